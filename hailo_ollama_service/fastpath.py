"""Fast answers for the commands that run at every start: no yaml, no argparse.

``render`` runs at every service start and every settings edit, the
service user's ``serve`` (the unit's main process, see serve.py) at every
start, and ``wait-ready`` in operators' scripts. When nothing that feeds
the render has changed since the last successful one, ``render`` only has
to say ``unchanged``; ``wait-ready`` only has to probe one address. Both are
answered here, importing nothing but ``os`` and ``sys`` (and ``socket`` for
the probe), so a Pi pays little more than the interpreter's own start.

The render stamp (root's bookkeeping, ``render.stamp``) lists the ``lstat``
of every input and output of the last successful render: the conffile, the
layer directory and every layer in it, the JSON, the environment file, the
drop-in, root's state file, this package's files and version, and (for
``--try-restart``, which also syncs the models) upstream's manifests. Inode,
size, mtime and ctime are compared, so an edit within the same second, an
edit with its mtime put back (``touch -r``: the ctime moves), a rename into
place, a layer added or removed (the directory changes) or a package
upgrade (new inodes) all take the full path. Inputs are stamped *before*
the render reads them, and a stamp is not written while any stamped file is
younger than ``RACY_NS`` (the file system's clock is coarse).
"""

from __future__ import annotations

import os
import sys
import time

from hailo_ollama_service import __version__

BOOK_REL = "var/lib/hailo-ollama-service"
STATE_REL = "var/lib/hailo-ollama"
STAMP_NAME = "render.stamp"
SYNC_STAMP_NAME = "sync-stamp"
SERVED_NAME = "served-address"
HEADER = "hailo-ollama-service render stamp 1"
SYNC_HEADER = "hailo-ollama-service sync stamp 1"
RACY_NS = 2_000_000_000
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIMIT = 1 << 20


def stat_line(path: str) -> str:
    """One stamp line for ``path``: its lstat fields, or "-" when missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path}\t-"
    except OSError:
        return f"{path}\t?"
    return (f"{path}\t{st.st_mode:o}\t{st.st_ino}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\t"
            f"{st.st_uid}\t{st.st_gid}")


def tree_lines(top: str, depth: int = 6) -> list[str]:
    """Stamp lines of ``top`` and everything below it (links not entered)."""
    lines = [stat_line(top)]
    if depth <= 0 or not os.path.isdir(top) or os.path.islink(top):
        return lines
    try:
        names = sorted(os.listdir(top))
    except OSError:
        return lines + [f"{top}/\t?"]
    for name in names:
        lines.extend(tree_lines(os.path.join(top, name), depth - 1))
    return lines


def package_lines() -> list[str]:
    """The version and the stamp lines of this package's directory and files."""
    return [f"version\t{__version__}"] + tree_lines(PACKAGE_DIR, 1)


def _trusted(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def read_private(path: str) -> str | None:
    """Text of a root-owned bookkeeping file (no link, not writable by others), or None."""
    try:
        if not _trusted(os.lstat(os.path.dirname(path))):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000 or not _trusted(st) or st.st_size > _LIMIT:
            return None
        return os.read(fd, _LIMIT).decode("utf-8", "replace")
    finally:
        os.close(fd)


def stamp_unchanged(root: str, synced: bool) -> bool:
    """True when the render stamp under ``root`` still matches every file it lists.

    ``synced``: the caller would also sync the models (``--try-restart``),
    which only a stamp written by such a render covers.
    """
    return _matches(os.path.join(root, BOOK_REL, STAMP_NAME), HEADER,
                    ("synced",) if synced else ("synced", "plain"))


def sync_unchanged(root: str) -> bool:
    """True when the service user's sync stamp still matches (see state.sync)."""
    return _matches(os.path.join(root, STATE_REL, SYNC_STAMP_NAME), SYNC_HEADER, ("synced",))


def stamp_text(header: str, kind: str, lines: list[str]) -> str:
    """The text of a stamp file."""
    return "\n".join([header, kind, *lines, ""])


def _matches(path: str, header: str, kinds: tuple[str, ...]) -> bool:
    text = read_private(path)
    if not text:
        return False
    lines = text.split("\n")
    if lines[0] != header or lines[-1] != "" or len(lines) < 3 or lines[1] not in kinds:
        return False
    package = package_lines()
    if lines[2:2 + len(package)] != package:
        return False
    for line in lines[2 + len(package):-1]:
        path = line.split("\t", 1)[0]
        if stat_line(path) != line:
            return False
    return True


def _split_root(argv: list[str], environ: dict[str, str]) -> tuple[str, list[str]] | None:
    """(root, the rest) of a command line, like the full parser's --root; None
    when another conffile is named (HAILO_OLLAMA_CONFIG: not stamped)."""
    if environ.get("HAILO_OLLAMA_CONFIG"):
        return None
    if argv[:1] == ["--root"] and len(argv) > 1:
        return argv[1], list(argv[2:])
    return environ.get("HAILO_OLLAMA_ROOT") or "/", list(argv)


def render_args(argv: list[str], environ: dict[str, str]) -> tuple[str, bool] | None:
    """(root, try_restart) when ``argv`` is a plain ``render`` the fast path may answer, else None."""
    found = _split_root(argv, environ)
    if found is None:
        return None
    root, args = found
    if args[:1] != ["render"] or not set(args[1:]) <= {"--keep-last-good", "--try-restart"}:
        return None
    return root, "--try-restart" in args


def sync_args(argv: list[str], environ: dict[str, str]) -> str | None:
    """The root of a plain ``sync-models`` run as a non-root user, else None."""
    found = _split_root(argv, environ)
    return found[0] if found and found[1] == ["sync-models"] and os.geteuid() != 0 else None


def young(lines: list[str], now_ns: int | None = None) -> bool:
    """True when a stamped file changed less than RACY_NS ago (its stamp could miss an edit)."""
    now = time.time_ns() if now_ns is None else now_ns
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 8 and now - max(int(fields[4]), int(fields[5])) < RACY_NS:
            return True
    return False


def wait_args(argv: list[str], environ: dict[str, str]) -> tuple[str, float, bool, int | None] | None:
    """(root, timeout, quiet, pid) of a ``wait-ready`` command line, or None
    for anything the full parser must handle (help, errors, other commands)."""
    found = _split_root(argv, environ)
    if found is None or found[1][:1] != ["wait-ready"]:
        return None
    root, args = found
    value = environ.get("MAINPID", "")
    timeout, quiet, pid = 60.0, False, int(value) if value.isdigit() and int(value) > 0 else None
    rest = args[1:]
    try:
        while rest:
            option = rest.pop(0)
            if option == "--quiet":
                quiet = True
            elif option in ("--timeout", "--pid") and rest:
                text = rest.pop(0)
                if option == "--timeout":
                    timeout = float(text)
                else:
                    pid = int(text)
            else:
                return None
    except ValueError:
        return None
    return root, timeout, quiet, pid


def served_address(root: str) -> tuple[str, int] | None:
    """(listen host, port) the server was last rendered with, from root's
    bookkeeping (written by every successful render), or None."""
    text = read_private(os.path.join(root, BOOK_REL, SERVED_NAME))
    fields = text.split() if text else []
    if len(fields) != 2 or not fields[1].isdigit():
        return None
    return fields[0], int(fields[1])


def main(argv: list[str]) -> int | None:
    """Answer ``render`` when unchanged, ``wait-ready`` and ``serve``; return
    the exit status, or None to take the full command line (cli.main)."""
    environ = dict(os.environ)
    found_serve = _split_root(argv, environ)
    if found_serve is not None and found_serve[1] == ["serve"]:
        from hailo_ollama_service import serve
        return serve.serve(found_serve[0])
    found = render_args(argv, environ)
    syncing = sync_args(argv, environ)
    if found is not None or syncing is not None:
        if not (stamp_unchanged(*found) if found else sync_unchanged(str(syncing))):
            return None
        sys.stdout.write("unchanged\n")
        return 0
    waiting = wait_args(argv, environ)
    address = served_address(waiting[0]) if waiting else None
    if waiting is None or address is None:
        return None
    from hailo_ollama_service import probe
    _root, timeout, quiet, pid = waiting
    return probe.report_wait(probe.client_host(address[0]), address[1], timeout, pid, quiet)
