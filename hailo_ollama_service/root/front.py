"""Root's side of the access front: its files, checked before they land.

With ``access.enabled`` on, ``prepare`` makes HAProxy's configuration, the
key map (from ``root.keys``) and, with TLS, one PEM of certificate and key;
it refuses (ConfigError: the render keeps the last good configuration)
when HAProxy is not installed, a certificate cannot be read from a
root-only path, or ``haproxy -c`` rejects the result in a staging copy.
``write`` puts them into ``/var/lib/hailo-ollama-service/access`` (0750,
group hailo-ollama-access: the front's user reads them, the server's user
cannot), or removes them when access is off. ``root.apply`` then reloads,
starts or stops ``hailo-ollama-access.service``; a change of keys alone
goes to the running front through HAProxy's runtime API (``push_keys``).
"""

from __future__ import annotations

import grp
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hailo_ollama_service import untrusted
from hailo_ollama_service.config.access import RUNTIME_SOCKET, front_config, keys_map
from hailo_ollama_service.config.load import ConfigError
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.config.schema import Value
from hailo_ollama_service.constants import ACCESS_USER, SNAKEOIL_CERT_REL, SNAKEOIL_KEY_REL
from hailo_ollama_service.fs.atomic import WriteError, ensure_dir, remove_file, write_atomic
from hailo_ollama_service.root import keys

PEM_LIMIT = 1 << 20
CHECK_TIMEOUT = 30.0
RUNTIME_TIMEOUT = 5.0
NAMES = ("haproxy.cfg", "keys.map", "tls.pem")
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Files:
    """The front's files as bytes (``tls`` None without TLS), and the paths they were made from."""

    config: bytes
    keys: bytes
    tls: bytes | None
    sources: tuple[str, ...]

    def named(self, base: str) -> dict[str, bytes]:
        """The files by name, with the configuration pointing at ``base``."""
        return {"haproxy.cfg": self.config.replace(b"@BASE@", base.encode()), "keys.map": self.keys,
                **({"tls.pem": self.tls} if self.tls is not None else {})}


def trusted_read(path: Path, key: str) -> bytes:
    """Read a certificate or key that root may trust.

    The file and every directory on its resolved path must belong to root
    and be writable by no one else, or be sticky like /tmp (links are
    resolved first, as certbot's live/ links need); at most 1 MiB. Takes the
    path and the setting that named it; returns the bytes; raises
    ConfigError naming the setting.
    """
    real = Path(os.path.realpath(path))
    for part in [*reversed(real.parents), real]:
        try:
            info = os.lstat(part)
        except OSError as err:
            raise ConfigError(str(path), f"cannot read: {err.strerror or err}", key=key) from None
        # A sticky directory (/tmp) is fine: no one else can rename root's entries in it.
        sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_uid != 0 or (info.st_mode & 0o022 and not sticky):
            raise ConfigError(str(path), f"{part} is owned by uid {info.st_uid} or writable by others; "
                              "refusing to read a certificate or key there", key=key)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError(str(path), f"cannot read: {err.strerror or err}", key=key) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > PEM_LIMIT:
            raise ConfigError(str(path), "not a regular file of at most 1 MiB", key=key)
        data = os.read(fd, PEM_LIMIT)
    finally:
        os.close(fd)
    if b"-----BEGIN " not in data:
        raise ConfigError(str(path), "not a PEM file (no -----BEGIN line)", key=key)
    return data


def _tls_files(paths: Paths, values: dict[str, Value]) -> tuple[Path, Path] | None:
    mode = values["access.tls"]
    if mode == "snakeoil":
        cert, key = paths.root / SNAKEOIL_CERT_REL, paths.root / SNAKEOIL_KEY_REL
        if not cert.exists() or not key.exists():
            raise ConfigError(str(paths.conffile), "snakeoil needs the ssl-cert package's certificate "
                              f"({cert}); install it: sudo apt install ssl-cert", key="access.tls")
        return cert, key
    if mode == "own":
        return Path(str(values["access.tls_certificate"])), Path(str(values["access.tls_key"]))
    return None


def prepare(paths: Paths, values: dict[str, Value], run: Runner | None = None) -> Files | None:
    """Make and check the front's files; None when access is off.

    Takes the Paths, the effective settings and a runner for ``haproxy -c``
    (default: subprocess). Raises ConfigError (one line, naming what to fix)
    when HAProxy is missing, a certificate is unfit, the key store is
    unusable or HAProxy refuses the configuration.
    """
    if not values["access.enabled"]:
        return None
    if not os.access(paths.haproxy, os.X_OK):
        raise ConfigError(str(paths.conffile), "access is on, but HAProxy is not installed; "
                          "install it: sudo apt install haproxy", key="access.enabled")
    tls = _tls_files(paths, values)
    pem = None
    if tls is not None:
        cert, key = tls
        pem = trusted_read(cert, "access.tls_certificate").rstrip(b"\n") + b"\n" + trusted_read(
            key, "access.tls_key").rstrip(b"\n") + b"\n"
    try:
        stored = keys.load(paths)
    except keys.KeyError_ as err:
        raise ConfigError(str(paths.keys_file), str(err).split(": ", 1)[-1]) from None
    files = Files(front_config(values, "@BASE@", pem is not None), keys_map((k.sha256, k.role) for k in stored),
                  pem, tuple(str(p) for p in tls or ()))
    if _current(paths) != files.named(str(paths.access_dir)):
        check(paths, files, run or _run)
    return files


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)


def check(paths: Paths, files: Files, run: Runner) -> None:
    """Have ``haproxy -c`` check the files in a root-only staging copy; raise ConfigError."""
    ensure_dir(paths.book_dir, 0o755)
    staging = tempfile.mkdtemp(prefix=".access-check.", dir=paths.book_dir)
    try:
        for name, data in files.named(staging).items():
            write_atomic(Path(staging) / name, data, 0o600)
        try:
            done = run([str(paths.haproxy), "-c", "-q", "-f", f"{staging}/haproxy.cfg"])
        except (OSError, subprocess.SubprocessError) as err:
            raise ConfigError(str(paths.conffile), f"haproxy -c could not run: {err}", key="access") from None
        if done.returncode != 0:
            said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            first = next((line for line in said if "ALERT" in line), said[0] if said else "no output")
            first = first.replace(staging, str(paths.access_dir))
            raise ConfigError(str(paths.conffile), "HAProxy refuses the access front's configuration: "
                              + untrusted.shown(first[:300]), key="access")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_map(paths: Paths) -> dict[str, str]:
    """The key map in place: digest -> role ({} when there is none)."""
    path = paths.access_dir / "keys.map"
    if not path.is_file() or path.is_symlink():
        return {}
    entries = {}
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#"):
            entries[fields[0]] = fields[1]
    return entries


def push_keys(paths: Paths, before: dict[str, str], timeout: float = RUNTIME_TIMEOUT) -> bool:
    """Bring the running front's key map in line with the file, through
    HAProxy's runtime API: no reload, so a key works, or stops working, for
    the next request, on every connection.

    Takes the Paths and the map as it was before the render. Returns True
    when every change was applied; False when the front does not answer or
    refuses one (the caller then reloads it).
    """
    after = read_map(paths)
    map_file = str(paths.access_dir / "keys.map")
    commands = [f"del map {map_file} {d}" for d in sorted(set(before) - set(after))]
    commands += [f"set map {map_file} {d} {r}" for d, r in sorted(after.items()) if d in before and before[d] != r]
    commands += [f"add map {map_file} {d} {r}" for d, r in sorted(after.items()) if d not in before]
    where = str(paths.root / RUNTIME_SOCKET.lstrip("/"))
    for command in commands:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(where)
                sock.sendall(command.encode() + b"\n")
                answer = b""
                while len(answer) < 4096:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        except OSError:
            return False
        if answer.strip():  # HAProxy answers these commands with nothing but an error
            return False
    return True


def _group() -> int | None:
    try:
        return grp.getgrnam(ACCESS_USER).gr_gid
    except KeyError:
        return None


def _current(paths: Paths) -> dict[str, bytes]:
    out = {}
    for name in NAMES:
        path = paths.access_dir / name
        if path.is_file() and not path.is_symlink():
            out[name] = path.read_bytes()
    return out


def write(paths: Paths, files: Files | None) -> list[str]:
    """Put the front's files in place (0640 root:hailo-ollama-access), or remove them.

    Takes the Paths and the prepared Files (None: access is off). Returns
    the paths that changed; raises WriteError.
    """
    changed: list[str] = []
    if files is None:
        for name in NAMES:
            if remove_file(paths.access_dir / name):
                changed.append(str(paths.access_dir / name))
        if paths.access_dir.is_dir() and not paths.access_dir.is_symlink():
            try:
                paths.access_dir.rmdir()
            except OSError:
                pass
        return changed
    gid = _group()
    if gid is None and os.geteuid() == 0 and str(paths.root) == "/":
        raise WriteError(f"the group {ACCESS_USER} is missing; reinstall hailo-ollama-service")
    owner = (0, gid) if gid is not None and os.geteuid() == 0 else None
    ensure_dir(paths.access_dir, 0o750, owner)
    named = files.named(str(paths.access_dir))
    # The certificate and the map first: a configuration never names a file that is not there.
    for name in ("tls.pem", "keys.map", "haproxy.cfg"):
        path = paths.access_dir / name
        if name in named:
            if write_atomic(path, named[name], 0o640, owner):
                changed.append(str(path))
        elif remove_file(path):
            changed.append(str(path))
    return changed
