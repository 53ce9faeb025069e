"""The front door: answers the commands that run at every start, else hands over to ``cli``.

``render`` runs at every service start and every settings edit, the
service user's ``serve`` (the unit's main process, see ``user.serve``) at
every start, and ``wait-ready`` in operators' scripts. When nothing that
feeds the render has changed since the last successful one (``stamp``),
``render`` only has to say ``unchanged``; ``wait-ready`` only has to probe
one address (``probe``). Both are answered here, importing nothing but
``os`` and ``sys`` (and ``socket`` for the probe), so a Pi pays little more
than the interpreter's own start. Anything else, and any command line this
module does not fully understand, goes to ``cli.main``.

The modules on these paths (this one, ``stamp``, ``probe``, ``constants``
and ``user.serve``) do without ``from __future__ import annotations``,
which alone costs about 0.1 ms: annotations that need it are strings.
"""

import os
import sys

from hailo_ollama_service import stamp


def _split_root(argv: list[str], environ: dict[str, str]) -> "tuple[str, list[str]] | None":
    """(root, the rest) of a command line, like the full parser's --root; None
    when another conffile is named (HAILO_OLLAMA_CONFIG: not stamped)."""
    if environ.get("HAILO_OLLAMA_CONFIG"):
        return None
    if argv[:1] == ["--root"] and len(argv) > 1:
        return argv[1], list(argv[2:])
    return environ.get("HAILO_OLLAMA_ROOT") or "/", list(argv)


def render_args(argv: list[str], environ: dict[str, str]) -> "tuple[str, bool] | None":
    """(root, try_restart) when ``argv`` is a plain ``render`` the fast path may answer, else None."""
    found = _split_root(argv, environ)
    if found is None:
        return None
    root, args = found
    if args[:1] != ["render"] or not set(args[1:]) <= {"--keep-last-good", "--try-restart"}:
        return None
    return root, "--try-restart" in args


def sync_args(argv: list[str], environ: dict[str, str]) -> "str | None":
    """The root of a plain ``sync-models`` run as a non-root user, else None."""
    found = _split_root(argv, environ)
    return found[0] if found and found[1] == ["sync-models"] and os.geteuid() != 0 else None


def wait_args(argv: list[str], environ: dict[str, str]) -> "tuple[str, float, bool, int | None] | None":
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


def fast(argv: list[str]) -> "int | None":
    """Answer ``render`` when unchanged, ``wait-ready`` and ``serve``; return
    the exit status, or None to take the full command line (see main)."""
    environ = dict(os.environ)
    found_serve = _split_root(argv, environ)
    if found_serve is not None and found_serve[1] == ["serve"]:
        from hailo_ollama_service.user import serve
        return serve.serve(found_serve[0])
    found = render_args(argv, environ)
    syncing = sync_args(argv, environ)
    if found is not None or syncing is not None:
        if not (stamp.stamp_unchanged(*found) if found else stamp.sync_unchanged(str(syncing))):
            return None
        sys.stdout.write("unchanged\n")
        return 0
    waiting = wait_args(argv, environ)
    address = stamp.served_address(waiting[0]) if waiting else None
    if waiting is None or address is None:
        return None
    from hailo_ollama_service import probe
    _root, timeout, quiet, pid = waiting
    return probe.report_wait(probe.client_host(address[0]), address[1], timeout, pid, quiet)


def main(argv: "list[str] | None" = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``): the fast
    answers above when they apply, else the full parser. Returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    code = fast(args)
    if code is None:
        from hailo_ollama_service.cli.main import main as full
        code = full(args)
    return code
