"""Stat stamps: how the commands that run at every start tell that nothing changed.

The render stamp (root's bookkeeping, ``render.stamp``) lists the ``lstat``
of every input and output of the last successful render: the conffile, the
layer directory and every layer in it, the JSON, the environment file, the
drop-in, root's state file, this package's files and version, and
upstream's manifests. The sync stamp (the service user's, ``sync-stamp``)
lists what the model mirror read and left, root's environment file, and
(in its kind line) the kiosk allowlist it applied. Inode, size, mtime and ctime are
compared, so an edit within the same second, an edit with its mtime put
back (``touch -r``: the ctime moves), a rename into place, a layer added or
removed (the directory changes) or a package upgrade (new inodes) all take
the full path. Inputs are stamped *before* they are read, and a stamp is not
written while any stamped file is younger than ``RACY_NS`` (the file
system's clock is coarse).

Also the bounded reader of root's bookkeeping (``read_private``) and the
served address that ``wait-ready`` probes. Imports ``os``, ``sys`` and
``time`` only: ``entry`` answers from here without yaml or argparse.
"""

import os
import time

from hailo_ollama_service import __version__
from hailo_ollama_service.constants import (
    BOOK_REL,
    MODELS_ENV,
    SERVED_NAME,
    STAMP_HEADER,
    STAMP_NAME,
    STATE_REL,
    SYNC_HEADER,
    SYNC_STAMP_NAME,
)

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
    """The version and the stamp lines of this package's directory and what is
    directly in it: its modules and its folders. An upgrade renames every file
    into place, which changes the folder that holds it."""
    return [f"version\t{__version__}"] + tree_lines(PACKAGE_DIR, 1)


def _trusted(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def read_private(path: str) -> "str | None":
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
    return _matches(os.path.join(root, BOOK_REL, STAMP_NAME), STAMP_HEADER,
                    ("synced",) if synced else ("synced", "plain"))


def sync_kind(allowed: str) -> str:
    """The kind line of a sync stamp: "synced", then a tab and the kiosk
    allowlist it was synced with (model names joined by ","), if any."""
    return f"synced\t{allowed}" if allowed else "synced"


def sync_unchanged(root: str, allowed: "str | None" = None) -> bool:
    """True when the service user's sync stamp still matches (see user.models.sync).

    Takes the root and the allowlist the caller would sync with, names
    joined by "," (None: this process's ``$HAILO_OLLAMA_SERVICE_MODELS``, as
    ``sync-models`` reads it). A stamp written with another allowlist never
    matches: a changed value in the environment takes the full path even
    when root's environment file looks unchanged (the file is stamped too).
    """
    value = os.environ.get(MODELS_ENV, "") if allowed is None else allowed
    return _matches(os.path.join(root, STATE_REL, SYNC_STAMP_NAME), SYNC_HEADER, (sync_kind(value),))


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


def young(lines: list[str], now_ns: "int | None" = None) -> bool:
    """True when a stamped file changed less than RACY_NS ago (its stamp could miss an edit)."""
    now = time.time_ns() if now_ns is None else now_ns
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 8 and now - max(int(fields[4]), int(fields[5])) < RACY_NS:
            return True
    return False


def served_address(root: str) -> "tuple[str, int] | None":
    """(listen host, port) the server was last rendered with, from root's
    bookkeeping (written by every successful render), or None."""
    text = read_private(os.path.join(root, BOOK_REL, SERVED_NAME))
    fields = text.split() if text else []
    if len(fields) != 2 or not fields[1].isdigit():
        return None
    return fields[0], int(fields[1])


