"""Safe file writes: atomic, explicit mode and owner, skipped when unchanged."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class WriteError(Exception):
    """A file could not be written safely; ``str()`` is one line."""


def _same(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> bool:
    """True when ``path`` already holds ``data`` with ``mode`` (and owner)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise WriteError(f"{path}: refusing to write through a symbolic link") from None
        raise WriteError(f"{path}: cannot read: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise WriteError(f"{path}: exists and is not a regular file")
        if stat.S_IMODE(info.st_mode) != mode:
            return False
        if owner is not None and (info.st_uid, info.st_gid) != owner:
            return False
        if info.st_size != len(data):
            return False
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks) == data
    finally:
        os.close(fd)


def ensure_dir(path: Path, mode: int = 0o755, owner: tuple[int, int] | None = None) -> bool:
    """Create ``path`` (and missing parents, 0755) and set its mode/owner.

    Returns True when something changed; raises WriteError if a symlink or a
    non-directory is in the way.
    """
    changed = False
    if path.is_symlink():
        raise WriteError(f"{path}: refusing to use a symbolic link as a directory")
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=mode)
        except OSError as err:
            raise WriteError(f"{path}: cannot create directory: {err.strerror}") from None
        changed = True
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise WriteError(f"{path}: exists and is not a directory")
    try:
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)
            changed = True
        if owner is not None and (info.st_uid, info.st_gid) != owner:
            os.chown(path, *owner, follow_symlinks=False)
            changed = True
    except OSError as err:
        raise WriteError(f"{path}: cannot set mode/owner: {err.strerror}") from None
    return changed


def write_atomic(path: Path, data: bytes, mode: int = 0o644,
                 owner: tuple[int, int] | None = None) -> bool:
    """Replace ``path`` with ``data`` atomically unless it already holds it.

    Writes a temp file in the same directory with ``mode`` (and ``owner``),
    fsyncs it, renames it over ``path`` and fsyncs the directory. Never
    writes through a symlink planted at ``path``. Returns True when the file
    changed; raises WriteError (the temp file is removed).
    """
    if mode & 0o002:
        raise WriteError(f"{path}: refusing to create a world-writable file")
    if _same(path, data, mode, owner):
        return False
    if path.is_symlink():
        raise WriteError(f"{path}: refusing to write through a symbolic link")
    directory = path.parent
    tmp = directory / f".{path.name}.tmp{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except OSError as err:
        raise WriteError(f"{path}: cannot write: {err.strerror}") from None
    try:
        fill(fd, data, mode, owner)
        os.rename(tmp, path)
    except OSError as err:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise WriteError(f"{path}: cannot write: {err.strerror}") from None
    _fsync_dir(directory)
    return True


def fill(fd: int, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """Write ``data`` to the new file ``fd``, set its mode (and owner), fsync
    and close it (also on error). Raises OSError."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_file(path: Path) -> bool:
    """Delete ``path`` if it exists (never following a symlink's target).

    Returns True when something was removed.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file`` (created 0600) for the block.

    Concurrent renders (postinst, the path unit, ExecStartPre) serialize on it.
    Raises WriteError when the lock file cannot be created.
    """
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise WriteError(f"{lock_file}: cannot create lock: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
