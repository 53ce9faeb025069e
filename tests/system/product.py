"""What the system tests know about hailo-ollama-service and its stand-in upstream.

Paths and names come from notes/contract.md; nothing here depends on pytest,
so `make demo` and bench/system_bench.py can reuse it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import harness

REPO = Path(__file__).resolve().parents[2]

PACKAGE = "hailo-ollama-service"
UPSTREAM = "hailo-gen-ai-model-zoo"
UNIT = "hailo-ollama.service"
PATH_UNIT = "hailo-ollama-config.path"
CONFIG_UNIT = "hailo-ollama-config.service"
CONFFILE = "/etc/hailo/hailo-ollama.yaml"
LAYER_DIR = "/etc/hailo/hailo-ollama.d"
DEBCONF_LAYER = f"{LAYER_DIR}/00-debconf.yaml"
JSON = "/etc/xdg/hailo-ollama/hailo-ollama.json"
JSON_DISTRIB = JSON + ".distrib"
ENV_FILE = "/run/hailo-ollama/hailo-ollama.env"
DROPIN = "/etc/systemd/system/hailo-ollama.service.d/50-hailo-ollama-service.conf"
STATE = "/var/lib/hailo-ollama"
BLOB = f"{STATE}/models/blob"
MANIFESTS = f"{STATE}/models/manifests"
UPSTREAM_MANIFESTS = "/usr/share/hailo-ollama/models/manifests"
USER = "hailo-ollama"
STANDIN_CONTROL = "/etc/hailo-standin"
DEBS_IN = "/srv/debs"  # readable by _apt: no "unsandboxed" notice
PORT = 11434
SEED = {"server": {"host": "0.0.0.0", "port": 11434},
        "library": {"host": "dev-public.hailo.ai", "port": 443},
        "main_poll_time_ms": 200}
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProductError(AssertionError):
    pass


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deb_file(deb: Path, path: str) -> bytes:
    """One file's content from a .deb (read on the host)."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    out = subprocess.run(["tar", "-xO", "." + path], input=tar, capture_output=True)
    if out.returncode != 0:
        raise ProductError(f"{path} not in {deb.name}: {out.stderr.decode()}")
    return out.stdout


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


# ------------------------------------------------------------------- debs
class Debs:
    """The .deb files under test: from $HOS_DEB, $HOS_DEB_PREVIOUS and
    $HOS_STANDIN_DIR when set, else built on first use into WORKDIR."""

    PREVIOUS_VERSION = "0.9.0"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)

    @staticmethod
    def _build(cmd, outdir: Path, pattern: str, timeout=900) -> Path:
        outdir.mkdir(parents=True, exist_ok=True)
        # The unit tests have their own stage (make check); the package build
        # for the system tests does not run them a second time.
        env = dict(os.environ)
        env["DEB_BUILD_OPTIONS"] = (env.get("DEB_BUILD_OPTIONS", "") + " nocheck").strip()
        cp = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
        if cp.returncode != 0:
            raise ProductError(f"{' '.join(map(str, cmd))} failed ({cp.returncode}):\n"
                               f"{cp.stdout[-3000:]}\n{cp.stderr[-5000:]}")
        found = sorted(outdir.glob(pattern))
        if len(found) != 1:
            raise ProductError(f"{' '.join(map(str, cmd))}: expected one {pattern} in {outdir}, "
                               f"found {[p.name for p in found]}")
        return found[0]

    @functools.cached_property
    def hos(self) -> Path:
        if os.environ.get("HOS_DEB"):
            return Path(os.environ["HOS_DEB"]).resolve()
        out = self.workdir / "current"
        return self._build([str(REPO / "tools/build-deb"), "--outdir", str(out)], out,
                           f"{PACKAGE}_*_all.deb")

    @functools.cached_property
    def hos_previous(self) -> Path:
        if os.environ.get("HOS_DEB_PREVIOUS"):
            return Path(os.environ["HOS_DEB_PREVIOUS"]).resolve()
        out = self.workdir / "previous"
        return self._build([str(REPO / "tools/build-deb"), "--version", self.PREVIOUS_VERSION,
                            "--outdir", str(out)], out, f"{PACKAGE}_{self.PREVIOUS_VERSION}_all.deb")

    @functools.cached_property
    def standin_dir(self) -> Path:
        if os.environ.get("HOS_STANDIN_DIR"):
            return Path(os.environ["HOS_STANDIN_DIR"]).resolve()
        out = self.workdir / "standin"
        self._build([str(REPO / "tests/standin/build-debs"), str(out)], out,
                    f"{UPSTREAM}_5.1.1-*_all.deb")
        return out

    def standin(self, version: str = "5.1.1") -> Path:
        found = sorted(self.standin_dir.glob(f"{UPSTREAM}_{version}-*_all.deb"))
        if not found:
            raise ProductError(f"no {UPSTREAM} {version} in {self.standin_dir}")
        return found[-1]

    @property
    def version(self) -> str:
        return deb_field(self.hos, "Version")


# ------------------------------------------------------------ installing
def apt_install(c: "harness.Container", *debs: Path, options=(), timeout=600,
                check=False) -> harness.Result:
    """`apt-get install -y ./x.deb ...` inside the container (debs copied to /root/debs)."""
    args = [c.copy_in(d, DEBS_IN + "/") for d in debs]
    return c.exec(["apt-get", "install", "-y", *options, *args], env=APT_ENV, timeout=timeout,
                  check=check)


def apt(c: "harness.Container", *args, timeout=600, check=False) -> harness.Result:
    return c.exec(["apt-get", "-y", *args], env=APT_ENV, timeout=timeout, check=check)


def dpkg_status(c, package: str = PACKAGE) -> str:
    """e.g. 'install ok installed 1.0.0', 'deinstall ok config-files 1.0.0', or ''."""
    r = c.exec(["dpkg-query", "-W", "-f", "${Status} ${Version}", package], check=False)
    return r.stdout.strip() if r.rc == 0 else ""


def installed(c, package: str = PACKAGE) -> bool:
    return dpkg_status(c, package).startswith("install ok installed")


def install_standin(c, debs: Debs, version: str = "5.1.1") -> harness.Result:
    return apt_install(c, debs.standin(version), check=True)


# ---------------------------------------------------------------- service
def main_pid(c) -> int:
    try:
        return int(c.unit_property(UNIT, "MainPID") or 0)
    except ValueError:
        return 0


def is_active(c, unit: str = UNIT) -> str:
    return c.exec(["systemctl", "is-active", unit], check=False).stdout.strip()


def is_enabled(c, unit: str = UNIT) -> str:
    return c.exec(["systemctl", "is-enabled", unit], check=False).stdout.strip()


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll PREDICATE until it returns a truthy value (returned) or TIMEOUT passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def jobs(c) -> "list[str]":
    r = c.exec(["systemctl", "list-jobs", "--no-legend", "--plain"], check=False)
    return [l for l in r.stdout.splitlines() if l.strip() and "No jobs" not in l]


def settle(c, timeout: float = 90) -> bool:
    """Wait until systemd has no queued job and the render oneshot is idle, so
    that the next step does not land in the middle of a (re)start."""
    return bool(wait_for(lambda: not jobs(c) and is_active(c, CONFIG_UNIT) in ("inactive", "failed"),
                         timeout, interval=0.2))


def answers(c, port: int = PORT, inside: bool = False) -> bool:
    """GET /api/version answers 200 with the upstream version on PORT."""
    if inside:
        r = c.exec(["curl", "-fsS", "--max-time", "3", f"http://127.0.0.1:{port}/api/version"],
                   check=False, timeout=10)
        return r.rc == 0 and '"version"' in r.stdout
    try:
        status, body = c.http("GET", "/api/version", port=port, timeout=3)
        return status == 200 and '"version"' in body
    except OSError:
        return False


def wait_answering(c, port: int = PORT, timeout: float = 60, inside: bool = False) -> bool:
    return bool(wait_for(lambda: answers(c, port, inside), timeout))


def api(c, method: str, path: str, body=None, port: int = PORT, timeout: float = 60):
    """(status, parsed JSON or text) of a request from the host."""
    status, text = c.http(method, path, port=port, body=body, timeout=timeout)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def listed_models(c, port: int = PORT) -> "set[str]":
    status, body = api(c, "GET", "/hailo/v1/list", port=port)
    if status != 200:
        raise ProductError(f"/hailo/v1/list answered {status}: {body}")
    return set(body["models"])


def tag_names(c, port: int = PORT) -> "set[str]":
    status, body = api(c, "GET", "/api/tags", port=port)
    if status != 200:
        raise ProductError(f"/api/tags answered {status}: {body}")
    return {m["name"] for m in body["models"]}


def shipped_models(c) -> "set[str]":
    """model:tag for every manifest the upstream package ships."""
    r = c.exec(["find", UPSTREAM_MANIFESTS, "-name", "manifest.json"])
    out = set()
    for line in r.stdout.split():
        parts = line.split("/")
        out.add(f"{parts[-3]}:{parts[-2]}")
    return out


def pull(c, model: str, port: int = PORT, stream: bool = False, timeout: float = 120):
    return api(c, "POST", "/api/pull", body={"model": model, "stream": stream}, port=port,
               timeout=timeout)


def ensure_pulled(c, model: str, port: int = PORT) -> None:
    if model not in tag_names(c, port):
        status, body = pull(c, model, port)
        if status != 200:
            raise ProductError(f"pull of {model} answered {status}: {body}")


def unload(c, model: str, port: int = PORT) -> None:
    """Unload with keep_alive 0 (the real server crashes on a second generation
    for a model whose device open failed, unless it was unloaded)."""
    try:
        api(c, "POST", "/api/generate", body={"model": model, "keep_alive": 0}, port=port, timeout=30)
    except OSError:
        pass


def journal_text(c, since: "str | None" = None, unit: "str | None" = None, lines: int = 2000) -> str:
    return strip_ansi(c.journal(unit=unit, lines=lines, since=since, extra=("-o", "cat")))


def rendered_json(c) -> dict:
    return json.loads(c.read_file(JSON))


def server_port(c) -> int:
    return int(rendered_json(c)["server"]["port"])


# --------------------------------------------------------------- settings
def write_conffile(c, text: str, how: str = "inplace") -> None:
    """Edit the conffile the way an admin would.

    inplace: truncate and write the same inode (shell redirection)
    cp:      cp a prepared file over it
    rename:  write a temp file beside it, then mv it into place (editors)
    """
    if how == "inplace":
        c.exec(["sh", "-c", f"cat > {CONFFILE}"], input=text)
    elif how == "cp":
        c.write_file("/root/hailo-ollama.yaml.new", text)
        c.exec(["cp", "/root/hailo-ollama.yaml.new", CONFFILE])
    elif how == "rename":
        tmp = "/etc/hailo/.hailo-ollama.yaml.swp-tmp"
        c.exec(["sh", "-c", f"cat > {tmp} && chmod 644 {tmp} && mv -f {tmp} {CONFFILE}"], input=text)
    else:
        raise ValueError(how)


def port_config(port, base: str = "") -> str:
    """BASE (the shipped conffile, all commented) plus an uncommented server.port."""
    return f"{base.rstrip()}\n\nserver:\n  port: {port}\n"


def preseed(c, question: str, value: str, type_: str = "string") -> None:
    c.exec(["debconf-set-selections"], input=f"{PACKAGE} {PACKAGE}/{question} {type_} {value}\n")


def reconfigure(c, timeout: float = 180) -> harness.Result:
    return c.exec(["dpkg-reconfigure", PACKAGE], env=APT_ENV, check=False, timeout=timeout)


def debconf_show(c) -> str:
    return c.exec(["debconf-show", PACKAGE], check=False).stdout


def debconf_value(c, question: str) -> "str | None":
    for line in debconf_show(c).splitlines():
        m = re.match(r"^[*\s]*" + re.escape(f"{PACKAGE}/{question}") + r":\s*(.*)$", line)
        if m:
            return m.group(1).strip()
    return None


def standin_mode(c, mode: "str | None") -> None:
    """Select the stand-in's mode (5.1 or 5.3); None: its default (5.1)."""
    if mode is None:
        c.exec(["rm", "-f", f"{STANDIN_CONTROL}/mode"])
    else:
        c.write_file(f"{STANDIN_CONTROL}/mode", mode + "\n")


def server_processes(c) -> "list[str]":
    """Processes of the service user, as 'PID COMMAND'."""
    r = c.exec(["ps", "-u", USER, "-o", "pid=,args="], check=False)
    return [l.strip() for l in r.stdout.splitlines() if l.strip()]


def reset(c, debs: Debs, shipped_conffile: str, timeout: float = 90) -> None:
    """Bring the shared container back to the state after a plain install:
    stand-in 5.1 without device, shipped conffile, debconf port 11434,
    service active and answering on 11434."""
    if not installed(c):
        apt_install(c, debs.hos, check=True)
    standin_mode(c, None)
    c.exec(["rm", "-f", f"{STANDIN_CONTROL}/library-unreachable", "/dev/hailo0", "/dev/h1x-0"])
    changed = False
    if c.exec(["cat", CONFFILE], check=False).stdout != shipped_conffile:
        write_conffile(c, shipped_conffile, how="cp")
        changed = True
    if debconf_value(c, "port") not in (None, "", str(PORT)):
        preseed(c, "port", str(PORT))
        reconfigure(c)
        changed = True
    if changed:
        wait_for(lambda: server_port(c) == PORT, 30)
    settle(c)
    if not wait_answering(c, PORT, timeout=30 if changed else 10) or is_active(c) != "active":
        c.systemctl("reset-failed")
        c.systemctl("restart", UNIT, timeout=120)
        if not wait_answering(c, PORT, timeout=timeout):
            raise ProductError("could not bring the service back to port 11434:\n" + c.diagnostics())
        settle(c)
