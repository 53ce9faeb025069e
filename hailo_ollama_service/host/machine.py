"""The machine as the checks see it: ``Host`` and the probes that postinst's
preflight, the doctor, the metrics and the benchmark share.

Each probe reads /proc, /dev, /sys and the file system below a root
directory, and runs commands through ``Host.run``, so that tests can fake
them; none of them needs the server to be running, and each is bounded in time.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.constants import SERVER, SERVICE_USER, UNIT
from hailo_ollama_service.fs import nofollow
from hailo_ollama_service.host import listeners
from hailo_ollama_service.untrusted import shown

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
    path = root / SERVER.lstrip("/")
    return path.is_file() and os.access(path, os.X_OK)


def binary_problem(root: Path = Path("/")) -> tuple[str, str] | None:
    """Return (what, fix) when the upstream server is not installed, else None."""
    if binary_present(root):
        return None
    return (f"{SERVER} is missing",
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


def run_command(argv: list[str], timeout: float = 3.0) -> tuple[int, str]:
    """Run ``argv``; return (exit status, stdout+stderr). 127 = missing, 124 = timed out."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except OSError as err:  # e.g. EACCES from a PATH entry this user cannot search
        return 126, f"{argv[0]}: {err.strerror or err}"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: timed out after {timeout:g} s"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass
class Host:
    """The machine as the checks see it (fakeable in tests)."""

    paths: Paths
    run: Callable[[list[str]], tuple[int, str]] = run_command
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    api_timeout: float = 1.5
    library_timeout: float = 2.5
    # (host, port) -> None or the problem; default: client.library.library_reachable
    library_probe: Callable[[str, int], str | None] | None = None

    def file(self, path: str) -> Path:
        """Return the absolute system ``path`` below the root."""
        return self.paths.root / path.lstrip("/")

    def upstream_version(self) -> str | None:
        """Return the installed hailo-gen-ai-model-zoo version (asked once), or None."""
        if not hasattr(self, "_upstream"):
            code, out = self.run(["dpkg-query", "-W", "-f=${Version}", "hailo-gen-ai-model-zoo"])
            self._upstream = out.strip() if code == 0 and out.strip() else None
        return self._upstream

    def identify(self) -> tuple[int, str]:
        """Return ``hailortcli fw-control identify``'s (exit status, output), run once."""
        if not hasattr(self, "_identify"):
            self._identify = self.run(["hailortcli", "fw-control", "identify"])
        return self._identify


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("-")[0])[:3])


def generation(version: str | None) -> str | None:
    """The configuration generation of an upstream version: "5.1" (JSON) or "5.3" (environment)."""
    if not version:
        return None
    return "5.3" if _version_tuple(version) >= (5, 3) else "5.1"


def can_open(info: os.stat_result, user: str) -> bool | None:
    """Can ``user`` read and write a file of this owner, group and mode? None when the user does not exist."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == entry.pw_uid:
        return mode & 0o600 == 0o600
    if info.st_gid in groups:
        return mode & 0o060 == 0o060
    return mode & 0o006 == 0o006


def device_usable(node: str) -> bool | None:
    """Can the service user open the device node (by its owner, group and mode)?
    None when that user does not exist."""
    return can_open(os.stat(node), SERVICE_USER)


def unit_properties(host: Host, unit: str = UNIT) -> tuple[dict[str, str] | None, str]:
    """(properties, "") of ``unit`` (default: the server's) from ``systemctl show``, or (None, why not)."""
    code, out = host.run(["systemctl", "show", unit, "--property=ActiveState,SubState,NRestarts,"
                          "ExecMainStatus,ExecMainCode,UnitFileState,LoadState"])
    if code != 0:
        first = out.splitlines()[0] if out else f"exit status {code}"
        return None, first[:120]
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line), ""


def free_space(host: Host) -> tuple[Path, int]:
    """(where, free bytes) of the file system that holds the models.

    The service user's models/ may be anything: it is opened without
    following a link; when it is missing or odd, the root is measured.
    """
    try:
        with nofollow.opened_dir(host.paths.state_dir, "models") as fd:
            info = os.statvfs(fd)
        where = host.paths.models_dir
    except OSError:
        info = os.statvfs(host.paths.root)
        where = host.paths.root
    return where, info.f_bavail * info.f_frsize


THROTTLE_BITS = {0: "under-voltage", 1: "arm frequency capped", 2: "throttled", 3: "soft temperature limit",
                 16: "under-voltage occurred", 17: "frequency capping occurred", 18: "throttling occurred",
                 19: "soft temperature limit occurred"}


def soc_temperature(host: Host) -> float | None:
    """Return the SoC temperature in °C from thermal_zone0, or None."""
    try:
        return int(host.file("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


THROTTLED_SYSFS = "/sys/devices/platform/soc/soc:firmware/get_throttled"


def throttled(host: Host) -> int | None:
    """The firmware's throttling bits: sysfs (readable by anyone on Raspberry Pi
    OS kernels), else ``vcgencmd get_throttled``; None off a Pi."""
    try:
        return int(host.file(THROTTLED_SYSFS).read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    code, out = host.run(["vcgencmd", "get_throttled"])
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out) if code == 0 else None
    return int(match.group(1), 16) if match else None
