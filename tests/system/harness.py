"""Booted Debian containers (bookworm or trixie) for the system tests and ``make demo``.

The release is ``HOS_SUITE`` (``bookworm`` when unset; ``trixie`` is the
other supported one); ``pytest --suite=trixie`` sets it for a test run.
A root per release is built once with mmdebstrap and cached under
``/var/cache/hailo-ollama-service-tests/`` (``HOS_CACHE_DIR``), keyed by a hash
of the recipe below, so a changed recipe builds a new root.  The build goes to
a temporary directory that is renamed into place, so an interrupted build never
leaves a broken cache.

Each :class:`Container` copies the cached root to a fresh run directory (the
copy persists across the reboots of that container), gets its own network
namespace with a veth pair (host side ``10.213.N.1/30``, container side
``10.213.N.2/30``), and boots it with real systemd as PID 1::

    systemd-nspawn -D ROOT --boot --register=no --keep-unit \\
        --network-namespace-path=/run/netns/NAME

Commands run inside with ``nsenter -t <container init pid> -a``.  Every wait
is bounded.  Nothing here depends on pytest.

Needs root, systemd-nspawn (systemd-container), mmdebstrap, iproute2 and
network access to deb.debian.org for the first build.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(os.environ.get("HOS_CACHE_DIR", "/var/cache/hailo-ollama-service-tests"))
RUNS_DIR = CACHE_DIR / "runs"
MIRROR = os.environ.get("HOS_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("HOS_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
SUPPORTED_SUITES = ("bookworm", "trixie")
SUITE = os.environ.get("HOS_SUITE", "bookworm")
if SUITE not in SUPPORTED_SUITES:
    raise SystemExit(f"HOS_SUITE={SUITE!r}: not one of {', '.join(SUPPORTED_SUITES)}")

# Everything the product and the stand-in need, so that installing the local
# .deb files inside the container needs no network.
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "libpam-systemd",
    "python3", "python3-yaml", "python3-requests",
    "ucf", "debconf", "curl", "iproute2", "adduser", "passwd",
    "ca-certificates", "procps", "psmisc", "init-system-helpers", "less", "apt-utils",
    # the Ansible example (test_86) connects over SSH, as to a real Pi, and
    # its apt module needs python3-apt (installed on Raspberry Pi OS)
    "openssh-server", "python3-apt",
    # test_96 runs the package's autopkgtests (debian/tests) from a source
    # tree with the null runner; autopkgtest unpacks a source tree with
    # dpkg-source and would install dpkg-dev from the network otherwise
    "autopkgtest", "dpkg-dev",
]

# Run inside the new root (as customize hooks) at build time.  "$1" is the root.
CUSTOMIZE = [
    'echo hos-test > "$1/etc/hostname"',
    'printf "127.0.0.1 localhost\\n127.0.1.1 hos-test\\n::1 localhost ip6-localhost\\n" > "$1/etc/hosts"',
    # the containers have no DNS; keep resolv.conf harmless
    'rm -f "$1/etc/resolv.conf"; printf "# no DNS in the test container\\n" > "$1/etc/resolv.conf"',
    # dpkg is much faster without fsync, and the root is throw-away
    'echo force-unsafe-io > "$1/etc/dpkg/dpkg.cfg.d/hos-test-unsafe-io"',
    # noise that only slows boots down or needs the network
    'chroot "$1" systemctl mask console-getty.service getty@tty1.service '
    'apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service '
    'fstrim.timer systemd-networkd-wait-online.service',
    # no installs from the network inside the container: lists are removed
    # by mmdebstrap; make apt fail fast instead of trying to resolve
    'printf \'Acquire::Retries "0";\\nAPT::Install-Recommends "false";\\n\' '
    '> "$1/etc/apt/apt.conf.d/90hos-test"',
    # make the journal persistent so it survives reboots of the run
    'mkdir -p "$1/var/log/journal"',
    # a machine-id is generated on the first boot of every run
    'printf "uninitialized\\n" > "$1/etc/machine-id"',
]



def set_suite(name: str) -> None:
    """Make NAME (one of SUPPORTED_SUITES) the release of every later root,
    container and piuparts tarball.  Raises HarnessError for another name."""
    global SUITE
    if name not in SUPPORTED_SUITES:
        raise HarnessError(f"suite {name!r}: not one of {', '.join(SUPPORTED_SUITES)}")
    SUITE = name


# Flavours of the root: the base root plus packages from the same archive,
# for containers that play another machine of the LAN (containers have no
# network, so what such a machine installs must already be in its root).
# Each flavour is cached as root-SUITE-FLAVOUR-KEY beside the base root
# (root-SUITE-KEY), KEY a hash of the flavour's whole recipe; the base
# recipe does not change when a flavour is added.
FLAVOURS = {
    # the fleet's load balancer (test_98, bench/balancer_bench.py): HAProxy
    # from the Debian archive, installed by the Ansible example's play, and
    # socat, which the rolling upgrade's play (upgrade.yml) installs to drive it
    "balancer": ("haproxy", "socat"),
    # a Pi with access control on (test_45, bench/access_bench.py): the
    # package's Suggests, HAProxy and ssl-cert (the snakeoil certificate)
    "access": ("haproxy", "ssl-cert"),
}

_KEY = r"[0-9a-f]{16}"


def _flavour_packages(flavour: str | None) -> tuple:
    if flavour is None:
        return ()
    if flavour not in FLAVOURS or not re.fullmatch(r"[a-z][a-z0-9]*", flavour):
        raise HarnessError(f"root flavour {flavour!r}: not one of {', '.join(sorted(FLAVOURS))}")
    return tuple(FLAVOURS[flavour])


def recipe(suite: str | None = None, flavour: str | None = None) -> dict:
    """What the cached root of SUITE (and FLAVOUR, see FLAVOURS) is built
    from (its hash names the cache)."""
    suite = suite or SUITE
    spec = {
        "format": 2,
        "suite": suite,
        "variant": "minbase",
        "sources": [
            f"deb {MIRROR} {suite} main",
            f"deb {MIRROR} {suite}-updates main",
            f"deb {SECURITY_MIRROR} {suite}-security main",
        ],
        "include": sorted(PACKAGES),
        "customize": CUSTOMIZE,
    }
    extra = _flavour_packages(flavour)
    if flavour is not None:  # the base recipe (and so its key) stays as it was
        spec["flavour"] = flavour
        spec["include"] = sorted(set(PACKAGES) | set(extra))
    return spec


# Under CI a missing prerequisite is a failure, never a skip.
ON_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")

NET_PREFIX = "10.213"
NETNS_PREFIX = "hos-test-"

DEFAULT_EXEC_TIMEOUT = 180
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 60

_live: set[Container] = set()
_live_lock = threading.Lock()


class HarnessError(RuntimeError):
    pass


class ExecError(HarnessError):
    def __init__(self, result: Result):
        self.result = result
        super().__init__(
            f"command {result.cmd!r} exited {result.rc}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )


@dataclass
class Result:
    cmd: list
    rc: int
    stdout: str
    stderr: str
    duration: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __bool__(self) -> bool:  # truthy when it succeeded
        return self.rc == 0


# ----------------------------------------------------------------- helpers
def log(msg: str) -> None:
    if os.environ.get("HOS_HARNESS_QUIET") != "1":
        print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def host_run(cmd, check=True, timeout=60, **kw) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{cmd!r} timed out after {timeout}s") from e
    if check and cp.returncode != 0:
        raise HarnessError(f"{cmd!r} exited {cp.returncode}: {cp.stderr.strip()}")
    return cp


def prerequisites() -> list[str]:
    """What is missing to run containers here (empty list: nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (run as root)")
    for tool, pkg in (("systemd-nspawn", "systemd-container"), ("mmdebstrap", "mmdebstrap"),
                      ("nsenter", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {pkg})")
    return missing


def recipe_key(suite: str | None = None, flavour: str | None = None) -> str:
    return hashlib.sha256(json.dumps(recipe(suite, flavour), sort_keys=True).encode()).hexdigest()[:16]


def cached_root_path(suite: str | None = None, flavour: str | None = None) -> Path:
    """root-SUITE-KEY (the base root), or root-SUITE-FLAVOUR-KEY."""
    suite = suite or SUITE
    middle = f"{flavour}-" if flavour else ""
    return CACHE_DIR / f"root-{suite}-{middle}{recipe_key(suite, flavour)}"


def _same_kind_roots(suite: str, flavour: str | None) -> list[Path]:
    """Every cached root of SUITE of the same flavour (the base root: of no
    flavour), whatever its key: the names other flavours use never match."""
    middle = re.escape(f"{flavour}-") if flavour else ""
    pattern = re.compile(rf"root-{re.escape(suite)}-{middle}{_KEY}")
    return [p for p in CACHE_DIR.glob(f"root-{suite}-*") if pattern.fullmatch(p.name)]


class _FileLock:
    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout, self.fd = path, timeout, None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise HarnessError(f"timed out waiting for lock {self.path}") from None
                time.sleep(1)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def host_lock(name: str, timeout: float = 3600) -> _FileLock:
    """A lock (context manager) on a resource of the host that two suites
    running at once must take in turn, e.g. the demo's port 11434."""
    return _FileLock(CACHE_DIR / f".{name}.lock", timeout=timeout)


def cached_venv(path: Path, requirements: list[str], timeout: float = 1800) -> Path:
    """PATH/bin/python3 of a host virtualenv with REQUIREMENTS from PyPI,
    built on first use under a lock, so two suites that run at once never
    build it at the same time.  A venv without the marker of exactly these
    requirements (half-built, or built for other ones) is made anew.
    Raises HarnessError when venv or pip fails."""
    marker = path / ".hos-requirements"
    wanted = "\n".join(requirements) + "\n"
    with host_lock("venv", timeout=timeout):
        if marker.is_file() and marker.read_text() == wanted:
            return path / "bin/python3"
        shutil.rmtree(path, ignore_errors=True)
        for cmd in (["/usr/bin/python3", "-m", "venv", str(path)],
                    [str(path / "bin/pip"), "install", "-q", "--disable-pip-version-check", *requirements]):
            cp = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if cp.returncode != 0:
                shutil.rmtree(path, ignore_errors=True)
                raise HarnessError(f"cannot build {path} ({' '.join(cmd)}): {cp.stderr[-2000:]}")
        marker.write_text(wanted)
    return path / "bin/python3"


def _mmdebstrap(spec: dict, target: Path, timeout: float, discard) -> None:
    """Build TARGET (a directory or a tarball) from the recipe SPEC (suite,
    variant, include, sources, optional customize hooks) with mmdebstrap.
    On a failure or a timeout, DISCARD() removes what was half-built and
    HarnessError is raised."""
    cmd = ["mmdebstrap", "--mode=root", f"--variant={spec['variant']}",
           "--include=" + ",".join(spec["include"])]
    cmd += [f"--customize-hook={hook}" for hook in spec.get("customize", ())]
    cmd += [spec["suite"], str(target), *spec["sources"]]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        discard()
        raise HarnessError(f"mmdebstrap timed out after {timeout}s") from None
    if cp.returncode != 0:
        discard()
        raise HarnessError(f"mmdebstrap failed ({cp.returncode}):\n{cp.stderr[-6000:]}")


def ensure_root(timeout: float = 1800, suite: str | None = None,
                flavour: str | None = None) -> Path:
    """Return the cached root of SUITE (default: the current one) or of its
    FLAVOUR (a name in FLAVOURS: the base packages plus the flavour's),
    building it first if the recipe changed.  Raises HarnessError when
    mmdebstrap fails or times out, or for an unknown flavour."""
    suite = suite or SUITE
    spec = recipe(suite, flavour)
    final = cached_root_path(suite, flavour)
    if final.is_dir():
        return final
    with _FileLock(CACHE_DIR / ".build.lock", timeout=timeout):
        if final.is_dir():
            return final
        # leftovers of interrupted builds
        for stale in CACHE_DIR.glob(".build-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=CACHE_DIR))
        target = tmp / "root"
        log(f"building {final} with mmdebstrap (first run only, a few minutes)")
        t0 = time.monotonic()
        _mmdebstrap(spec, target, timeout, lambda: shutil.rmtree(tmp, ignore_errors=True))
        (target / ".hos-recipe.json").write_text(json.dumps(spec, indent=1, sort_keys=True))
        os.rename(target, final)
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"built {final} in {time.monotonic() - t0:.0f}s")
        # roots of older recipes of the same flavour are of no further use
        # (never the base root for a flavour, nor another flavour's)
        for old in _same_kind_roots(suite, flavour):
            if old != final and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return final


# systemd is part of the base: every target of the package boots systemd, and
# installing then purging systemd itself as a dependency inside piuparts
# leaves systemd's own directories (/var/lib/private, /root/.ssh, ...).
def piuparts_recipe(suite: str | None = None) -> dict:
    suite = suite or SUITE
    return {"format": 1, "suite": suite, "variant": "minbase", "include": ["systemd"],
            "sources": [f"deb {MIRROR} {suite} main"]}


def ensure_piuparts_tarball(timeout: float = 1800, suite: str | None = None) -> Path:
    """A minbase tarball of SUITE made by mmdebstrap, for `piuparts --basetgz`
    (cached beside the root, keyed by its own recipe).  Raises HarnessError."""
    suite = suite or SUITE
    spec = piuparts_recipe(suite)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    tgz = CACHE_DIR / f"piuparts-{suite}-{key}.tar.gz"
    if tgz.is_file():
        return tgz
    with _FileLock(CACHE_DIR / ".build.lock", timeout=timeout):
        if tgz.is_file():
            return tgz
        tmp = tgz.with_name(f".build-{tgz.name}.{os.getpid()}.tar.gz")
        log(f"building {tgz} with mmdebstrap")
        _mmdebstrap(spec, tmp, timeout, lambda: tmp.unlink(missing_ok=True))
        os.rename(tmp, tgz)
        for old in CACHE_DIR.glob(f"piuparts-{suite}-*.tar.gz"):
            if old != tgz:
                old.unlink(missing_ok=True)
        return tgz


# Release-specific tools that run on the host's files, not in a booted
# system: that release's lintian, and its python3 for the unit tests.
# (bash-completion and prometheus's promtool: unit tests check what the
# package generates with them; haproxy -c and openssl: the access front's
# configuration is checked against each release's HAProxy.)
TOOLS_PACKAGES = ["lintian", "python3", "python3-pytest", "python3-yaml", "python3-requests",
                  "debconf", "ucf", "shellcheck", "dpkg-dev", "procps", "iproute2", "curl",
                  "bash-completion", "prometheus", "haproxy", "openssl"]


def tools_recipe(suite: str | None = None) -> dict:
    suite = suite or SUITE
    return {"format": 1, "suite": suite, "variant": "minbase", "include": sorted(TOOLS_PACKAGES),
            "sources": [f"deb {MIRROR} {suite} main", f"deb {MIRROR} {suite}-updates main",
                        f"deb {SECURITY_MIRROR} {suite}-security main"]}


def ensure_tools_root(timeout: float = 1800, suite: str | None = None) -> Path:
    """A directory tree of SUITE with TOOLS_PACKAGES (cached, keyed by its
    recipe), for :func:`run_in_tools_root`.  Raises HarnessError."""
    suite = suite or SUITE
    spec = tools_recipe(suite)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    final = CACHE_DIR / f"tools-{suite}-{key}"
    if final.is_dir():
        return final
    with _FileLock(CACHE_DIR / ".build.lock", timeout=timeout):
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=CACHE_DIR))
        log(f"building {final} with mmdebstrap")
        _mmdebstrap(spec, tmp / "root", timeout, lambda: shutil.rmtree(tmp, ignore_errors=True))
        os.rename(tmp / "root", final)
        shutil.rmtree(tmp, ignore_errors=True)
        for old in CACHE_DIR.glob(f"tools-{suite}-*"):
            if old != final and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return final


def run_in_tools_root(cmd: list[str], binds: dict[str, str], suite: str | None = None,
                      timeout: float = 900, cwd: str = "/") -> subprocess.CompletedProcess:
    """Run CMD in SUITE's tools root, which stays read-only (systemd-nspawn
    --read-only, a tmpfs on /tmp), with each host path of BINDS mounted
    read-only at its place inside.  No network namespace of its own: the
    unit tests use loopback.  Returns the completed process (stdout and
    stderr together); raises HarnessError on a timeout."""
    root = ensure_tools_root(suite=suite)
    full = ["systemd-nspawn", "-q", "-D", str(root), "--read-only", "--tmpfs=/tmp:mode=1777",
            "--tmpfs=/var/tmp:mode=1777", "--register=no", "--keep-unit", "--pipe",
            "--setenv=PYTHONDONTWRITEBYTECODE=1", "--setenv=LC_ALL=C.UTF-8", f"--chdir={cwd}",
            "--console=pipe"]
    full += [f"--bind-ro={host}:{inside}" for host, inside in binds.items()]
    full += ["--", *cmd]
    try:
        return subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{cmd!r} in the {suite or SUITE} tools root timed out after {timeout}s") from e


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def clean_stale() -> None:
    """Remove run dirs, network namespaces and cgroups left by runs that
    died.  Called with the runs lock held (see Container)."""
    if RUNS_DIR.is_dir():
        for run in RUNS_DIR.iterdir():
            if (run / "kept").exists():  # HOS_KEEP_RUN=1: left for inspection
                continue
            owner = run / "owner.pid"
            try:
                pid = int(owner.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = 0
            if pid and _pid_alive(pid):
                continue
            nspawn = run / "nspawn.pid"
            try:
                npid = int(nspawn.read_text())
                if _pid_alive(npid) and "systemd-nspawn" in Path(f"/proc/{npid}/cmdline").read_text():
                    continue  # still booted by someone: leave it
            except (OSError, ValueError):
                pass
            netns = run / "netns"
            if netns.is_file():
                name = netns.read_text().strip()
                host_run(["ip", "netns", "del", name], check=False)
            remove_recorded_cgroups(run)
            shutil.rmtree(run, ignore_errors=True)


# ---------------------------------------------------------------- cgroups
def container_cgroups(name: str) -> list[Path]:
    """The cgroup directories a container called NAME boots in, one per
    hierarchy that systemd in a container uses (the named v1 "systemd" one
    and the unified one, on a hybrid host; the unified one alone on a
    cgroup-v2 host): NAME below the cgroup of this process.
    systemd-nspawn --keep-unit puts its payload under the cgroup it was
    started in; without a cgroup of its own, every container of the host
    would share one "payload" cgroup, and two containers' systemd would
    manage the same "system.slice/hailo-ollama.service" (EIO, 219/CGROUP)."""
    found = []
    entries = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        entries[controllers] = path
    v1 = Path("/sys/fs/cgroup/systemd")
    if "name=systemd" in entries and (v1 / "cgroup.procs").exists():
        found.append(v1 / entries["name=systemd"].lstrip("/") / name)
    for v2 in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if "" in entries and (v2 / "cgroup.controllers").exists():
            found.append(v2 / entries[""].lstrip("/") / name)
            break
    return found


def remove_recorded_cgroups(run_dir: Path) -> None:
    """Remove the cgroups a container of RUN_DIR recorded (its file "cgroups")."""
    record = run_dir / "cgroups"
    if record.is_file():
        for line in record.read_text().split():
            remove_cgroup(Path(line))


def remove_cgroup(path: Path) -> None:
    """Remove the cgroup PATH and what systemd left below it, deepest first
    (only empty cgroups can go; a cgroup still in use stays)."""
    if not path.is_dir():
        return
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda entry: -entry[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


# ---------------------------------------------------------------- network
def free_port() -> int:
    """A TCP port of the host's 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Network:
    """A network namespace with a veth pair to the host."""

    def __init__(self):
        self.name = None
        for n in range(1, 251):
            name = f"{NETNS_PREFIX}{n}"
            if Path(f"/run/netns/{name}").exists():
                continue
            cp = host_run(["ip", "netns", "add", name], check=False)
            if cp.returncode == 0:  # creating it is the allocation (atomic)
                self.name, self.n = name, n
                break
        if self.name is None:
            raise HarnessError("no free network namespace slot (hos-test-1..250)")
        self.host_if = f"hos{self.n}h"
        self.host_ip = f"{NET_PREFIX}.{self.n}.1"
        self.ip = f"{NET_PREFIX}.{self.n}.2"
        try:
            host_run(["ip", "link", "del", self.host_if], check=False)
            host_run(["ip", "link", "add", self.host_if, "type", "veth",
                  "peer", "name", "host0", "netns", self.name])
            host_run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
            host_run(["ip", "link", "set", self.host_if, "up"])
            host_run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            host_run(["ip", "-n", self.name, "addr", "add", f"{self.ip}/30", "dev", "host0"])
            host_run(["ip", "-n", self.name, "link", "set", "host0", "up"])
            host_run(["ip", "-n", self.name, "route", "add", "default", "via", self.host_ip])
        except Exception:
            self.destroy()
            raise

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def destroy(self) -> None:
        if self.name:
            host_run(["ip", "netns", "del", self.name], check=False)
            host_run(["ip", "link", "del", self.host_if], check=False)
            self.name = None


# -------------------------------------------------------------- container
class Container:
    """One booted container of SUITE (copy of the cached root)."""

    def __init__(self, name: str = "hos", root: Path | None = None, keep: bool | None = None):
        self.name = name
        self.base = root or ensure_root()
        self.keep = os.environ.get("HOS_KEEP_RUN") == "1" if keep is None else keep
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        # Under a lock: another run's clean_stale must never see this run
        # directory before it names its owner (it would remove it as stale).
        with host_lock("runs", timeout=600):
            clean_stale()
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=RUNS_DIR))
            (self.run_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        self.root = self.run_dir / "root"
        self.net: Network | None = None
        self.proc: subprocess.Popen | None = None
        self.init_pid: int | None = None
        self.boots = 0
        self.last_failed_units: list[str] = []
        self._console = None
        t0 = time.monotonic()
        try:
            host_run(["cp", "-a", "--reflink=auto", str(self.base), str(self.root)], timeout=600)
        except BaseException:  # also KeyboardInterrupt: leave no half copy behind
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        log(f"{self.name}: copied root to {self.root} in {time.monotonic() - t0:.1f}s")
        with _live_lock:
            _live.add(self)

    # ---- addresses
    @property
    def ip(self) -> str:
        if not self.net:
            raise HarnessError("container has no network yet")
        return self.net.ip

    def url(self, path: str = "/", port: int = 11434) -> str:
        return f"http://{self.ip}:{port}{path}"

    @property
    def machine_name(self) -> str:
        """A valid machine (and host) name: letters, digits and '-' only."""
        base = re.sub(r"[^A-Za-z0-9-]+", "-", self.name).strip("-")[:40] or "hos"
        return f"{base}-{self.net.n if self.net else 0}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ---- life cycle
    def boot(self, timeout: float = BOOT_TIMEOUT, wait: bool = True, extra_args=()) -> None:
        if self.running:
            raise HarnessError("already booted")
        if self.net is None:
            self.net = Network()
            (self.run_dir / "netns").write_text(self.net.name + "\n")
        self.boots += 1
        console = open(self.run_dir / f"console-{self.boots}.log", "wb")
        self._console = console
        cmd = ["systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
               "-q", f"--network-namespace-path={self.net.path}", f"--machine={self.machine_name}",
               "--console=read-only", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
               *extra_args]
        log(f"{self.name}: boot #{self.boots} ({self.net.name}, {self.net.ip})")
        cgroups = self._cgroups()
        if cgroups:  # a shell that moves itself into them, then becomes nspawn
            moves = " && ".join(f'echo $$ > "${i + 1}/cgroup.procs"' for i in range(len(cgroups)))
            cmd = ["/bin/sh", "-c", f'{moves} && shift {len(cgroups)} && exec "$@"', "sh",
                   *map(str, cgroups), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        (self.run_dir / "nspawn.pid").write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + timeout
        self.init_pid = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"systemd-nspawn exited {self.proc.returncode}: "
                                   + self.console_log()[-3000:])
            pid = self._find_init()
            if pid:
                self.init_pid = pid
                break
            time.sleep(0.1)
        if self.init_pid is None:
            self._kill()
            raise HarnessError(f"container init did not appear within {timeout}s")
        if wait:
            self.wait_until_running(timeout=max(10.0, deadline - time.monotonic()))

    def _cgroups(self) -> list[Path]:
        """This container's own cgroups (see container_cgroups), made and
        recorded in the run directory; empty when they cannot be made."""
        cgroups = container_cgroups(f"hos-{self.run_dir.name}")
        try:
            for cgroup in cgroups:
                cgroup.mkdir(exist_ok=True)
        except OSError as e:
            log(f"{self.name}: no cgroup of its own ({e}); it shares nspawn's")
            return []
        (self.run_dir / "cgroups").write_text("".join(f"{c}\n" for c in cgroups))
        return cgroups

    def _find_init(self) -> int | None:
        """The container's PID 1: a descendant of nspawn whose innermost NSpid is 1."""
        todo = [self.proc.pid]
        seen = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) > 1 and ids[-1] == "1" and comm == "systemd":
                        return pid
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return None

    def console_log(self) -> str:
        try:
            return (self.run_dir / f"console-{self.boots}.log").read_text(errors="replace")
        except OSError:
            return ""

    def wait_until_running(self, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait for `systemctl is-system-running --wait`; returns the state.

        `degraded` is tolerated; the failed units are kept in
        `self.last_failed_units` (and logged)."""
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            left = max(1.0, deadline - time.monotonic())
            r = self.exec(["systemctl", "is-system-running", "--wait"], check=False,
                          timeout=left)
            state = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "unknown"
            if state in ("running", "degraded"):
                break
            if state in ("maintenance", "stopping"):
                raise HarnessError(f"{self.name}: system state {state}")
            time.sleep(0.5)
        else:
            raise HarnessError(f"{self.name}: not running after {timeout}s (state {state})\n"
                               + self.console_log()[-3000:])
        self.last_failed_units = []
        if state == "degraded":
            r = self.exec(["systemctl", "--failed", "--no-legend", "--plain"], check=False)
            self.last_failed_units = [l.split()[0] for l in r.stdout.splitlines() if l.strip()]
            log(f"{self.name}: degraded, failed units: {', '.join(self.last_failed_units)}")
        return state

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Power the container off (bounded; killed if it does not stop)."""
        if not self.running:
            self._close_console()
            return
        self.exec(["systemctl", "poweroff", "--no-block"], check=False, timeout=20)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: did not power off in {timeout}s, sending SIGTERM to nspawn")
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._kill()
        self.init_pid = None
        self._close_console()

    def _kill(self) -> None:
        for pid in (self.init_pid, self.proc.pid if self.proc else None):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: nspawn {self.proc.pid} survives SIGKILL")
        self.init_pid = None

    def _close_console(self) -> None:
        if self._console:
            self._console.close()
            self._console = None

    def reboot(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Stop and boot again (the run directory, i.e. the disk, is kept)."""
        self.stop()
        self.boot(timeout=timeout)

    def destroy(self) -> None:
        """Stop, remove the network namespace and (unless kept) the run dir."""
        try:
            self.stop()
        except Exception as e:  # still tear down the rest
            log(f"{self.name}: stop failed: {e}")
            if self.proc and self.proc.poll() is None:
                self._kill()
        if self.net:
            self.net.destroy()
            self.net = None
        remove_recorded_cgroups(self.run_dir)
        if self.keep:
            log(f"{self.name}: kept {self.run_dir} (remove it by hand)")
            (self.run_dir / "kept").write_text("")
            (self.run_dir / "owner.pid").unlink(missing_ok=True)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    # ---- commands
    ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb", "LC_ALL": "C.UTF-8"}

    def exec(self, cmd, input=None, check: bool = True, timeout: float = DEFAULT_EXEC_TIMEOUT,
             env: dict | None = None) -> Result:
        """Run CMD (list, or a string for `sh -c`) inside the container."""
        if not self.running or not self.init_pid:
            raise HarnessError(f"{self.name} is not booted")
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        environ = dict(self.ENV)
        environ.update(env or {})
        full = ["nsenter", "-t", str(self.init_pid), "-a", "--", "env", "-i",
                *[f"{k}={v}" for k, v in environ.items()], *cmd]
        if isinstance(input, str):
            input = input.encode()
        t0 = time.monotonic()
        proc = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            res = Result(list(cmd), -9, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - t0)
            raise HarnessError(f"{cmd!r} timed out after {timeout}s in {self.name}\n"
                               f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}") from None
        res = Result(list(cmd), proc.returncode, out.decode(errors="replace"),
                     err.decode(errors="replace"), time.monotonic() - t0)
        if check and res.rc != 0:
            raise ExecError(res)
        return res

    def sh(self, script: str, **kw) -> Result:
        return self.exec(["sh", "-c", script], **kw)

    # ---- files
    def write_file(self, path: str, data, mode: int | None = None) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.exec(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path], input=data)
        if mode is not None:
            self.exec(["chmod", oct(mode)[2:], path])

    def read_file(self, path: str) -> str:
        return self.exec(["cat", path]).stdout

    def exists(self, path: str) -> bool:
        return self.exec(["test", "-e", path], check=False).rc == 0

    def copy_in(self, src, dest: str) -> str:
        """Copy a host file into the container; DEST may be a directory (ending in /)."""
        src = Path(src)
        if dest.endswith("/"):
            dest = dest + src.name
        self.write_file(dest, src.read_bytes())
        return dest

    # ---- devices
    def add_device(self, path: str = "/dev/hailo0", major: int = 1, minor: int = 3,
                   mode: str = "0666") -> None:
        """A character device node inside the container (default c 1 3, i.e. /dev/null,
        which the container's device policy lets the service open read-write)."""
        self.exec(["sh", "-c", 'rm -f "$1" && mknod -m "$2" "$1" c "$3" "$4"', "sh",
                   path, mode, str(major), str(minor)])

    def remove_device(self, path: str = "/dev/hailo0") -> None:
        self.exec(["rm", "-f", path])

    # ---- systemd
    def systemctl(self, *args, check=False, timeout=DEFAULT_EXEC_TIMEOUT) -> Result:
        return self.exec(["systemctl", *args], check=check, timeout=timeout)

    def unit_property(self, unit: str, prop: str) -> str:
        return self.exec(["systemctl", "show", "-P", prop, unit]).stdout.strip()

    def journal(self, unit: str | None = "hailo-ollama.service", lines: int = 80,
                since: str | None = None, extra=()) -> str:
        cmd = ["journalctl", "--no-pager", "-o", "short-precise", "-n", str(lines), *extra]
        if unit:
            cmd += ["-u", unit]
        if since:
            cmd += ["--since", since]
        return self.exec(cmd, check=False).stdout

    def now(self) -> str:
        """The container clock, in a format `journalctl --since` accepts."""
        return self.exec(["date", "+%Y-%m-%d %H:%M:%S.%N"]).stdout.strip()[:26]

    def diagnostics(self, unit: str = "hailo-ollama.service", lines: int = 80) -> str:
        if not self.running:
            return f"({self.name} is not running)"
        parts = []
        for title, cmd in (
            (f"journalctl -u {unit} -n {lines}",
             ["journalctl", "--no-pager", "-u", unit, "-n", str(lines)]),
            ("systemctl status", ["systemctl", "status", "--no-pager", "-l", "--lines=20", unit,
                                  "hailo-ollama-config.path", "hailo-ollama-config.service",
                                  "hailo-ollama-config-recheck.service"]),
            ("systemctl --failed", ["systemctl", "--failed", "--no-pager"]),
        ):
            try:
                r = self.exec(cmd, check=False, timeout=30)
                parts.append(f"===== {title} =====\n{r.stdout}{r.stderr}")
            except Exception as e:  # diagnostics must never raise
                parts.append(f"===== {title} =====\n(failed: {e})")
        return "\n".join(parts)

    # ---- HTTP from the host
    def http(self, method: str, path: str, port: int = 11434, body=None, timeout: float = 30,
             host: str | None = None):
        """(status, body text) of a request from the host to the container."""
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (
                body.encode() if isinstance(body, str) else body)
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"http://{host or self.ip}:{port}{path}", data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_http(self, path: str = "/api/version", port: int = 11434, timeout: float = 60,
                  inside: bool = False) -> bool:
        """Poll until PATH answers 200 (from the host, or from inside the container)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if inside:
                r = self.exec(["curl", "-fsS", "--max-time", "3",
                               f"http://127.0.0.1:{port}{path}"], check=False, timeout=10)
                if r.rc == 0:
                    return True
            else:
                try:
                    status, _ = self.http("GET", path, port=port, timeout=3)
                    if status == 200:
                        return True
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.25)
        return False


def live_containers() -> list[Container]:
    with _live_lock:
        return list(_live)


def destroy_all() -> None:
    for c in live_containers():
        try:
            c.destroy()
        except Exception as e:
            log(f"teardown of {c.name} failed: {e}")


atexit.register(destroy_all)


def start_bench(suite: str | None) -> None:
    """What every benchmark script does first: exit (status 2, one line)
    when a prerequisite is missing, then take SUITE (when given) and the
    signal handlers that remove its containers on Ctrl-C."""
    missing = prerequisites()
    if missing:
        print("needs " + ", ".join(missing), file=sys.stderr)
        raise SystemExit(2)
    if suite:
        set_suite(suite)
    install_signal_handlers()


def install_signal_handlers() -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt: pytest then stops the
    session and runs the fixture finalizers (and atexit tears down the rest)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


if __name__ == "__main__":  # manual use: python3 harness.py [shell|build]
    what = sys.argv[1] if len(sys.argv) > 1 else "build"
    print(ensure_root())
    if what == "shell":
        with Container("manual") as c:
            c.boot()
            print(f"booted: init pid {c.init_pid}, ip {c.ip}; "
                  f"nsenter -t {c.init_pid} -a bash   (Ctrl-D here to stop)")
            try:
                sys.stdin.read()
            except KeyboardInterrupt:
                pass
