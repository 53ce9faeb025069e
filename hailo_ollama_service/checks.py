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

from hailo_ollama_service import probe
from hailo_ollama_service.paths import SERVICE_USER, UNIT

UPSTREAM_BINARY = "/usr/bin/hailo-ollama"
DEVICE_GLOBS = ("/dev/hailo[0-9]*", "/dev/h1x-[0-9]*")


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a TCP port."""

    pid: int | None
    command: str
    user: str
    unit: str

    @property
    def is_ours(self) -> bool:
        """True when the holder is our own server."""
        return self.unit == UNIT or self.command == "hailo-ollama" or self.user == SERVICE_USER

    def describe(self) -> str:
        """One phrase naming the program, e.g. ``ollama (pid 42, ollama.service)``."""
        extra = [f"pid {self.pid}"] if self.pid else []
        if self.unit:
            extra.append(self.unit)
        return f"{self.command or 'an unknown program'}" + (f" ({', '.join(extra)})" if extra else "")


def _listening_inodes(root: Path, port: int) -> set[str]:
    """Socket inodes listening on ``port`` per /proc/net/tcp and tcp6."""
    return {inode for _address, number, inode in probe.tcp_listeners(str(root / "proc/net")) if number == port}


def _unit_of(root: Path, pid: str) -> str:
    try:
        cgroup = (root / "proc" / pid / "cgroup").read_text()
    except OSError:
        return ""
    for line in cgroup.splitlines():
        tail = line.rsplit("/", 1)[-1]
        if tail.endswith(".service"):
            return tail
    return ""


def _user_of(root: Path, pid: str) -> str:
    try:
        for line in (root / "proc" / pid / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                try:
                    return pwd.getpwuid(uid).pw_name
                except KeyError:
                    return str(uid)
    except (OSError, ValueError):
        pass
    return ""


def port_holder(port: int, root: Path = Path("/")) -> PortHolder | None:
    """Find who listens on TCP ``port``.

    Returns None when nobody listens; a PortHolder whose pid is None when a
    socket listens but its process is not visible (not root).
    """
    inodes = _listening_inodes(root, port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in sorted(glob.glob(str(root / "proc/[0-9]*"))):
        pid = os.path.basename(proc)
        try:
            fds = os.listdir(f"{proc}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{proc}/fd/{fd}") in wanted:
                    try:
                        command = Path(proc, "comm").read_text().strip()
                    except OSError:
                        command = ""
                    return PortHolder(int(pid), command, _user_of(root, pid), _unit_of(root, pid))
            except OSError:
                continue
    return PortHolder(None, "", "", "")


def port_problem(port: int, root: Path = Path("/")) -> tuple[str, str] | None:
    """Return (what, fix) when another program holds ``port``, else None."""
    holder = port_holder(port, root)
    if holder is None or holder.is_ours:
        return None
    if holder.unit and holder.unit != UNIT:
        fix = f"stop it with 'sudo systemctl disable --now {holder.unit}'"
    elif holder.pid:
        fix = f"stop it (kill {holder.pid})"
    else:
        fix = "stop that program"
    return (f"port {port} is already in use by {holder.describe()}: hailo-ollama cannot listen there",
            f"{fix}, or choose another port with 'sudo dpkg-reconfigure hailo-ollama-service'")


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
