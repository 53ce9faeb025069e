"""Who listens on a TCP port, and is it our server? (read from /proc)

"Our server" is decided by what a process cannot forge, never by a name:
``/proc/PID/comm`` and the command line are whatever a process set, so any
local user can call a program ``hailo-ollama``. A listening socket is ours
when both hold:

- its owner (the ``uid`` column of /proc/net/tcp or tcp6, the user that
  created the socket) is the service user's uid, so no other local user can
  pass; and
- every process that holds it sits in the cgroup systemd made for the unit
  (``/system.slice/hailo-ollama.service``, or another slice's): a process
  cannot move itself out of or into a cgroup it does not own, so a process
  of the service user started outside the unit does not pass either. A
  cgroup of that name inside a delegated subtree (a user's own systemd
  instance, ``user@1000.service/app.slice/hailo-ollama.service``, or a
  container's scope) is not the unit's: every component before the unit's
  name must be a slice.

Everything is read below a root directory so that tests can fake /proc
(and /etc/passwd, where the service user's uid comes from).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from hailo_ollama_service import probe
from hailo_ollama_service.constants import SERVICE_USER, UNIT


@dataclass(frozen=True)
class Socket:
    """One listening TCP socket: ``family`` (4 or 6), local ``address`` as
    text (a v4-mapped IPv6 address shown as IPv4), ``port``, owner ``uid``,
    ``inode``, and the pids of the processes that hold it (empty when none
    is visible, e.g. when not root)."""

    family: int
    address: str
    port: int
    uid: int
    inode: str
    pids: tuple[int, ...] = field(default=())

    @property
    def shown_address(self) -> str:
        """``127.0.0.1:11434`` or ``[::1]:11434``."""
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def listening(port: int, root: Path = Path("/")) -> list[Socket]:
    """Take a TCP port and the root; return every socket listening on it
    (tcp, then tcp6), each with the pids that hold it. Malformed lines are
    skipped; raises nothing."""
    found: list[Socket] = []
    for address, number, inode, uid, family in probe.tcp_listeners(str(root / "proc/net")):
        if number == port:
            try:
                found.append(Socket(family, probe.decode_address(address), port, uid, inode))
            except ValueError:
                continue
    if not found:
        return found
    holders = socket_pids(root, {s.inode for s in found})
    return [Socket(s.family, s.address, s.port, s.uid, s.inode, tuple(holders.get(s.inode, ()))) for s in found]


def socket_pids(root: Path, inodes: set[str]) -> dict[str, list[int]]:
    """Take the root and socket inodes; return inode -> pids of the processes
    whose open file descriptors include that socket (sorted by pid)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[str, list[int]] = {}
    try:
        pids = sorted(int(name) for name in os.listdir(root / "proc") if name.isascii() and name.isdigit())
    except OSError:
        return found
    for pid in pids:
        fd_dir = root / "proc" / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(fd_dir / fd))
            except OSError:  # closed meanwhile
                continue
            if inode is not None and pid not in found.setdefault(inode, []):
                found[inode].append(pid)
    return found


def cgroup_of(root: Path, pid: int) -> str:
    """Take the root and a pid; return the process's systemd cgroup path (the
    unified ``0::`` line, else cgroup v1's ``name=systemd`` line), or "" when
    unreadable."""
    try:
        text = (root / "proc" / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    legacy = ""
    for line in text.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            return path
        if controllers == "name=systemd":
            legacy = path
    return legacy


def in_unit(cgroup: str, unit: str = UNIT) -> bool:
    """Take a cgroup path; True when it is the cgroup of the system unit
    ``unit``: it ends in ``/unit`` and every component before it is a slice
    (so not a same-named cgroup in a user manager's or container's subtree)."""
    parts = cgroup.split("/")
    return (len(parts) >= 2 and parts[0] == "" and parts[-1] == unit
            and all(part.endswith(".slice") for part in parts[1:-1]))


def service_uid(root: Path = Path("/"), user: str = SERVICE_USER) -> int | None:
    """Take the root; return the uid of ``user`` from ``root``/etc/passwd
    (on the real root, from the system's user database if not there), or
    None when there is no such user."""
    try:
        for line in (root / "etc/passwd").read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] == user and fields[2].isascii() and fields[2].isdigit():
                return int(fields[2])
    except OSError:
        pass
    if Path(root).resolve() != Path("/"):
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def is_ours(sock: Socket, root: Path = Path("/"), uid: int | None = None) -> bool:
    """Take a listening socket, the root and the service user's uid (looked up
    when None); True when the socket is our server's: owned by that uid and
    held only by processes in the unit's cgroup (at least one visible)."""
    wanted = service_uid(root) if uid is None else uid
    return (wanted is not None and sock.uid == wanted and bool(sock.pids)
            and all(in_unit(cgroup_of(root, pid)) for pid in sock.pids))


def unit_of(cgroup: str) -> str:
    """Take a cgroup path; return the systemd unit it names (``x.service``), or ""."""
    tail = cgroup.rsplit("/", 1)[-1]
    return tail if tail.endswith(".service") else ""


__all__ = ["Socket", "listening", "socket_pids", "cgroup_of", "in_unit", "service_uid", "is_ours", "unit_of"]
