"""Probes of the host shared by postinst's preflight (and the doctor).

Each probe reads /proc, /dev and the file system below a root directory so
that tests can fake them; none of them needs the server to be running.
"""

from __future__ import annotations

import glob
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from hailo_ollama_service import listeners
from hailo_ollama_service.paths import UNIT
from hailo_ollama_service.untrusted import shown

UPSTREAM_BINARY = "/usr/bin/hailo-ollama"
DEVICE_GLOBS = ("/dev/hailo[0-9]*", "/dev/h1x-[0-9]*")


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a TCP port: its pid (None when not visible),
    ``comm`` and user as /proc says (display only: any process names itself),
    its systemd unit, the socket's address and whether it is our server."""

    pid: int | None
    command: str
    user: str
    unit: str
    address: str = ""
    ours: bool = False

    @property
    def is_ours(self) -> bool:
        """True when the holder is our own server: decided by the socket's
        owner uid and the unit's cgroup (listeners.is_ours), never by a name."""
        return self.ours

    def describe(self) -> str:
        """One phrase naming the program, e.g. ``ollama (pid 42, ollama.service)``;
        what /proc says is escaped (untrusted.shown)."""
        extra = [f"pid {self.pid}"] if self.pid else []
        if self.unit:
            extra.append(shown(self.unit))
        name = shown(self.command) if self.command else "an unknown program"
        return name + (f" ({', '.join(extra)})" if extra else "")


def _user_of(root: Path, pid: int) -> str:
    try:
        for line in (root / "proc" / str(pid) / "status").read_text(errors="replace").splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                try:
                    return pwd.getpwuid(uid).pw_name
                except KeyError:
                    return str(uid)
    except (OSError, ValueError, IndexError):
        pass
    return ""


def _holder(sock: listeners.Socket, root: Path, uid: int | None) -> PortHolder:
    """The PortHolder of one listening socket: named after its first holding
    process outside the unit (else its first process)."""
    ours = listeners.is_ours(sock, root, uid) if uid is not None else False
    if not sock.pids:
        return PortHolder(None, "", "", "", sock.shown_address, ours)
    cgroups = {pid: listeners.cgroup_of(root, pid) for pid in sock.pids}
    pid = next((p for p in sock.pids if not listeners.in_unit(cgroups[p])), sock.pids[0])
    try:
        command = (root / "proc" / str(pid) / "comm").read_text(errors="replace").strip()
    except OSError:
        command = ""
    unit = listeners.unit_of(cgroups[pid])  # a system unit's only: not one of a user's own systemd
    unit = unit if listeners.in_unit(cgroups[pid], unit) else ""
    return PortHolder(pid, command, _user_of(root, pid), unit, sock.shown_address, ours)


def port_holders(port: int, root: Path = Path("/")) -> list[PortHolder]:
    """Take a TCP port and the root; return one PortHolder per socket listening
    on it (IPv4 and IPv6), [] when nobody listens."""
    sockets = listeners.listening(port, root)
    uid = listeners.service_uid(root) if sockets else None
    return [_holder(sock, root, uid) for sock in sockets]


def port_holder(port: int, root: Path = Path("/")) -> PortHolder | None:
    """Find who listens on TCP ``port``: a holder that is not our server if
    there is one, else ours.

    Returns None when nobody listens; a PortHolder whose pid is None when a
    socket listens but its process is not visible (not root).
    """
    holders = port_holders(port, root)
    return next((h for h in holders if not h.is_ours), holders[0] if holders else None)


def _stop_fix(holder: PortHolder) -> str:
    if holder.unit and holder.unit != UNIT:
        return f"stop it with 'sudo systemctl disable --now {shown(holder.unit)}'"
    if holder.pid:
        return f"stop it (kill {holder.pid})"
    return "stop that program"


def port_problem(port: int, root: Path = Path("/")) -> tuple[str, str] | None:
    """Take a TCP port and the root; return (what, fix) when a program other
    than our server listens on ``port`` (on any address, IPv4 or IPv6), else
    None. What /proc says about it is escaped."""
    return _problem(port, port_holders(port, root))


def _problem(port: int, holders: list[PortHolder]) -> tuple[str, str] | None:
    strangers = [h for h in holders if not h.is_ours]
    if not strangers:
        return None
    stranger = next((h for h in strangers if h.pid), strangers[0])
    return (beside_problem if len(strangers) < len(holders) else conflict_problem)(port, stranger)


def conflict_problem(port: int, stranger: PortHolder) -> tuple[str, str]:
    """Take the port and a holder that is not ours while our server does not
    listen; return (what, fix)."""
    return (f"port {port} is already in use by {stranger.describe()}: hailo-ollama cannot listen there",
            f"{_stop_fix(stranger)}, or choose another port with 'sudo dpkg-reconfigure hailo-ollama-service'")


def beside_problem(port: int, stranger: PortHolder) -> tuple[str, str]:
    """Take the port and a holder that is not ours while our server listens
    on that port too (e.g. on [::1] beside an IPv4-only server); return
    (what, fix): clients that try that address first reach the other program."""
    where = stranger.address or f"port {port}"
    loopback = next((f" (clients that try localhost as {name} first reach it)" for name, prefixes in
                     (("::1", ("[::1]:", "[::]:")), ("127.0.0.1", ("127.", "0.0.0.0:")))
                     if stranger.address.startswith(prefixes)), "")
    return (f"{stranger.describe()} also listens on {where}, beside hailo-ollama{loopback}",
            f"{_stop_fix(stranger)}; it may be catching requests meant for hailo-ollama")


def port_verdict(port: int, root: Path = Path("/"), is_root: bool = True) -> tuple[str, str, str]:
    """Take the server's port, the root and whether we run as root; return
    doctor's (status, found, fix) for it: ``ok`` when only our server listens,
    ``warn`` when nobody does or the holder is not visible, ``fail`` when
    another program listens on it, alone or beside our server (on another
    address or family, e.g. [::1] beside an IPv4-only server)."""
    holders = port_holders(port, root)
    if not holders:
        return "warn", f"nothing listens on port {port}", f"sudo systemctl restart {UNIT}"
    ours = [h for h in holders if h.is_ours]
    strangers = [h for h in holders if not h.is_ours]
    if not ours and all(h.pid is None for h in strangers):
        note = "" if is_root else " (run as root to see the program)"
        return "warn", f"port {port} is held by a process not visible{note}", ""
    problem = _problem(port, holders)
    if problem:
        return ("fail", *problem)
    return "ok", f"port {port} held by {ours[0].describe()} on {', '.join(h.address for h in ours)}", ""


def port_warning(port: int, root: Path = Path("/")) -> str | None:
    """Return a one-line warning with the fix when another program holds ``port``."""
    problem = port_problem(port, root)
    return f"{problem[0]}; {problem[1]}" if problem else None


def device_nodes(root: Path = Path("/")) -> list[str]:
    """Return the Hailo device nodes present (/dev/hailo0, /dev/h1x-0 ...)."""
    found: list[str] = []
    for pattern in DEVICE_GLOBS:
        found.extend(sorted(glob.glob(str(root / pattern.lstrip("/")))))
    return found


def binary_present(root: Path = Path("/")) -> bool:
    """True when the upstream server binary is installed and executable."""
    path = root / UPSTREAM_BINARY.lstrip("/")
    return path.is_file() and os.access(path, os.X_OK)


def binary_problem(root: Path = Path("/")) -> tuple[str, str] | None:
    """Return (what, fix) when the upstream server is not installed, else None."""
    if binary_present(root):
        return None
    return (f"{UPSTREAM_BINARY} is missing",
            "install Hailo's hailo-gen-ai-model-zoo package from the Hailo Developer Zone")


def device_problem(root: Path = Path("/")) -> tuple[str, str] | None:
    """Return (what, fix) when no Hailo device node exists, else None."""
    if device_nodes(root):
        return None
    return ("no Hailo device (/dev/hailo0 or /dev/h1x-0): the API works, but chat and generate fail",
            "install the driver (sudo apt install dkms hailo-h10-all), seat the HAT and reboot; "
            "check with 'hailortcli fw-control identify'")


def preflight(port: int, root: Path = Path("/")) -> list[str]:
    """Return postinst's warnings (each one line: what; fix)."""
    problems = [binary_problem(root), device_problem(root), port_problem(port, root)]
    return [f"{what}; {fix}" for what, fix in filter(None, problems)]
