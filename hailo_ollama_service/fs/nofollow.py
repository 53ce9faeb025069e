"""File access below a directory that a less trusted user can write.

Every path component below a trusted base is opened relative to its parent
(``openat``) with ``O_NOFOLLOW``: a symbolic link planted at any level is
refused, never followed, and a directory swapped for a link mid-walk cannot
redirect a later step. Files are opened with ``O_NONBLOCK`` and checked with
``fstat`` before a byte is read, so a FIFO, socket or device is refused
instead of blocking or being read, and every read has a size bound.

Root uses these to look into the service user's tree (doctor); the service
user's own step (state.py) uses them too, so that it fails cleanly instead of
writing somewhere odd.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

from hailo_ollama_service.fs.atomic import WriteError, fill

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Unsafe(OSError):
    """Something other than what was asked for is in the way (a symbolic
    link, a FIFO, a device, a file over the size bound); ``str()`` is one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unsafe path"


def split(rel: str | PurePosixPath) -> list[str]:
    """Return the components of a relative path; raise Unsafe for ``..``,
    ``.``, empty or absolute paths, which could leave the base."""
    text = str(rel)
    parts = text.split("/")
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Unsafe(f"{text!r}: not a plain relative path")
    return parts


def open_base(path: Path) -> int:
    """Open the directory ``path`` (its last component must not be a link).

    The components above ``path`` are resolved normally: they are the
    caller's trusted, root-owned directories. Returns a directory fd; raises
    FileNotFoundError when it is missing and Unsafe when it is a link or not
    a directory.
    """
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Unsafe(f"{path}: a symbolic link or not a directory; refusing to use it") from None
        raise


def open_dir(base_fd: int, parts: list[str], where: Path, create: bool = False, mode: int = 0o755,
             owner: tuple[int, int] | None = None) -> int:
    """Walk ``parts`` below ``base_fd`` one component at a time, never following a link.

    Takes the base fd, the components, ``where`` (the path shown in errors),
    and whether to create missing directories (with ``mode`` and ``owner``).
    Returns a new directory fd (the caller closes it). Raises
    FileNotFoundError for a missing component when not creating, Unsafe for
    a link or a non-directory, and WriteError when a directory cannot be made.
    """
    fd = os.dup(base_fd)
    try:
        for index, name in enumerate(parts):
            here = where.joinpath(*parts[:index + 1]) if parts else where
            if create:
                _mkdir_at(fd, name, here, mode, owner)
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Unsafe(f"{here}: a symbolic link or not a directory; refusing to use it") from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _mkdir_at(dir_fd: int, name: str, here: Path, mode: int, owner: tuple[int, int] | None) -> None:
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        return
    except OSError as err:
        raise WriteError(f"{here}: cannot create directory: {err.strerror}") from None
    child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(child, mode)
        if owner is not None:
            os.fchown(child, *owner)
    finally:
        os.close(child)


@contextmanager
def opened_dir(base: Path, rel: str = "", create: bool = False, mode: int = 0o755,
               owner: tuple[int, int] | None = None) -> Iterator[int]:
    """Context manager: the fd of ``base/rel`` opened with open_base + open_dir."""
    base_fd = open_base(base)
    try:
        fd = open_dir(base_fd, split(rel) if rel else [], base, create, mode, owner)
    finally:
        os.close(base_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def read_regular(dir_fd: int, name: str, limit: int, where: Path | str = "") -> bytes | None:
    """Read the regular file ``name`` in ``dir_fd``, at most ``limit`` bytes.

    Returns its content, or None when it does not exist. Raises Unsafe when
    it is a link, not a regular file (FIFO, socket, device, directory) or
    larger than ``limit``; never blocks and never reads more than ``limit``.
    """
    shown = f"{where}/{name}" if where else name
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Unsafe(f"{shown}: a symbolic link; refusing to follow it") from None
        if err.errno in (errno.ENXIO, errno.EISDIR, errno.ENODEV):
            raise Unsafe(f"{shown}: not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unsafe(f"{shown}: not a regular file")
        if info.st_size > limit:
            raise Unsafe(f"{shown}: {info.st_size} bytes, more than the {limit} expected")
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise Unsafe(f"{shown}: more than the {limit} bytes expected")
        return data
    finally:
        os.close(fd)


def kind(dir_fd: int, name: str) -> str | None:
    """Return "dir", "file", "link" or "other" for ``name`` (never following
    a link), or None when it does not exist."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "link"
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(info.st_mode) else "other"


def walk_files(dir_fd: int, depth: int = 8, limit: int = 10000) -> Iterator[tuple[str, str]]:
    """Yield (relative path, kind) of every non-directory below ``dir_fd``.

    Directories are entered by fd with O_NOFOLLOW, links are reported as
    "link" and never entered; the walk stops ``depth`` levels down and after
    ``limit`` entries, so a hostile tree cannot make it run for ever.
    """
    seen = 0

    def walk(fd: int, prefix: str, level: int) -> Iterator[tuple[str, str]]:
        nonlocal seen
        for name in sorted(os.listdir(fd)):
            seen += 1
            if seen > limit:
                return
            rel = f"{prefix}{name}"
            what = kind(fd, name)
            if what == "dir":
                if level >= depth:
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    yield from walk(child, rel + "/", level + 1)
                finally:
                    os.close(child)
            elif what is not None:
                yield rel, what

    yield from walk(dir_fd, "", 0)


def write_at(dir_fd: int, name: str, data: bytes, mode: int, where: Path,
             owner: tuple[int, int] | None = None) -> bool:
    """Replace ``name`` in ``dir_fd`` with ``data`` atomically, unless it holds it.

    A temp file is created with O_EXCL|O_NOFOLLOW in the same directory and
    renamed over ``name`` (a rename replaces a link or a FIFO; it never
    writes through one). Returns True when the file changed; raises
    WriteError (the temp file is removed).
    """
    try:
        current = read_regular(dir_fd, name, len(data), where)
    except Unsafe:
        current = None
    if current == data and kind(dir_fd, name) == "file":
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_IMODE(info.st_mode) == mode and (owner is None or (info.st_uid, info.st_gid) == owner):
            return False
    tmp = f".{name}.tmp{os.getpid()}"
    try:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                     dir_fd=dir_fd)
        fill(fd, data, mode, owner)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as err:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        if err.errno == errno.EISDIR:
            raise WriteError(f"{where}/{name}: a directory is in the way") from None
        raise WriteError(f"{where}/{name}: cannot write: {err.strerror}") from None
    os.fsync(dir_fd)
    return True


def unlink_at(dir_fd: int, name: str) -> bool:
    """Remove the non-directory ``name`` in ``dir_fd``; True when it existed."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def statvfs(path: Path) -> os.statvfs_result:
    """statvfs of the directory ``path`` opened without following a final link."""
    fd = open_base(path)
    try:
        return os.statvfs(fd)
    finally:
        os.close(fd)
