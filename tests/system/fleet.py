"""A fleet of Pis behind a load balancer, in booted containers (issue 11).

Shared by test_98_balancer.py and bench/balancer_bench.py; nothing here
depends on pytest.

- Pis: containers of the base root with the stand-in upstream and our
  package, a usable device node, and the stand-in's token delay set.
- The balancer: a container of the root flavour ``balancer`` (the base
  root plus Debian's haproxy, since containers have no network), set up by
  the Ansible example (examples/ansible/balancer.yml) over real SSH.
- The LAN: each container has its own network namespace with a link to
  the host only (harness.Network, 10.213.N.2). The balancer gets a
  point-to-point veth link to each Pi besides (balancer 10.214.K.1, Pi
  10.214.K.2): the Pis' "LAN address", given to the play as the Pi's
  ``hos_api_address``. The links live in the containers' own namespaces
  and go away with them; the host forwards nothing.

API keys (issue 20): the balancer can ask for keys itself
(hos_balancer_api_keys: their hashes in a map file) and show the Pis a key
of its own (hos_balancer_pi_key) in place of the client's; keys here are
made as a Pi makes them (new_api_key), and request() and chat() send one.

Run as a script to write examples/haproxy/haproxy.cfg from the template
and the example inventory (the test checks that they agree):

    sudo /usr/bin/python3 tests/system/fleet.py example-config
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import harness
import product

ANSIBLE_DIR = product.REPO / "examples/ansible"
PLAYBOOK = ANSIBLE_DIR / "playbook.yml"
BALANCER_PLAY = ANSIBLE_DIR / "balancer.yml"
TEMPLATE = ANSIBLE_DIR / "templates/haproxy.cfg.j2"
KEYS_MAP_TEMPLATE = ANSIBLE_DIR / "templates/hailo-ollama-keys.map.j2"
KEYS_MAP = "/etc/haproxy/hailo-ollama-keys.map"  # the play's hos_balancer_keys_map
EXAMPLE_INVENTORY = ANSIBLE_DIR / "inventory.ini"
EXAMPLE_CONFIG = product.REPO / "examples/haproxy/haproxy.cfg"

ANSIBLE_VENV = harness.CACHE_DIR / "ansible-venv"  # the same one test_86 uses
ANSIBLE_CORE = "ansible-core>=2.15,<2.17"
OLLAMA_VENV = harness.CACHE_DIR / "ollama-venv"
OLLAMA_PYTHON = "ollama>=0.4,<1"  # the Ollama project's Python client, from PyPI

BALANCER_PORT = 11434
STATS = "127.0.0.1:8404"  # the example's default (on the balancer itself)
POOL = "hailo"  # the example's default pool: backends hailo_generate, hailo_api
LAN_PREFIX = "10.214"
MODEL = "qwen2:1.5b"
ANSWER = "Hello! I am the hailo-ollama stand-in."  # the stand-in's canned answer


class FleetError(AssertionError):
    pass


# ------------------------------------------------------------ tools (host)
def _venv(path: Path, requirement: str, binary: str) -> Path:
    """PATH/bin/BINARY from harness.cached_venv (built once, under a lock)."""
    try:
        harness.cached_venv(path, [requirement])
    except harness.HarnessError as e:
        raise FleetError(str(e)) from e
    wanted = path / "bin" / binary
    if not wanted.exists():
        raise FleetError(f"{wanted} missing after pip install {requirement}")
    return wanted


def ansible_playbook() -> Path:
    return _venv(ANSIBLE_VENV, ANSIBLE_CORE, "ansible-playbook")


def ollama_python() -> Path:
    """The python3 of a virtualenv that has the `ollama` client package."""
    return _venv(OLLAMA_VENV, OLLAMA_PYTHON, "python3")


def control_dir(workdir: Path) -> Path:
    """Where Ansible keeps its SSH master connections for runs with inventories in WORKDIR."""
    return workdir / "cp"


def close_ssh_masters(workdir: Path) -> None:
    """End the SSH master connections Ansible left (ControlPersist): an open
    session keeps a container from powering off for a minute."""
    cp = control_dir(workdir)
    if not cp.is_dir():
        return
    for sock in cp.iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "fleet"], capture_output=True,
                       timeout=20, check=False)


def run_playbook(inventory: Path, playbook: Path = PLAYBOOK, *extra: str, timeout: float = 1200,
                 workdir: Path | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook; its local files go to WORKDIR (default: the inventory's directory)."""
    workdir = workdir or inventory.parent
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local"),
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_FORKS="8",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir(workdir)),
               ANSIBLE_SSH_ARGS="-C -o ControlMaster=auto -o ControlPersist=30s")
    return subprocess.run([str(ansible_playbook()), "-i", str(inventory), str(playbook), *extra],
                          capture_output=True, text=True, env=env, timeout=timeout)


def recaps(done: subprocess.CompletedProcess) -> dict[str, str]:
    """host -> its PLAY RECAP line ('ok=5 changed=0 unreachable=0 failed=0 ...')."""
    out = {}
    for line in done.stdout.splitlines():
        if " : ok=" in line:
            host, _, counts = line.partition(" : ")
            out[host.strip()] = " ".join(counts.split())
    return out


def render_template(workdir: Path, template: Path = TEMPLATE, inventory: Path = EXAMPLE_INVENTORY,
                    extra_vars: dict | None = None) -> str:
    """TEMPLATE rendered by Ansible (on this host) for INVENTORY, with the
    balancer play's own defaults and EXTRA_VARS (a file of WORKDIR: they
    may hold keys)."""
    import yaml  # python3-yaml: the product's own dependency, on the host too

    plays = yaml.safe_load(BALANCER_PLAY.read_text())
    out = workdir / f"rendered-{template.stem}"
    play = [{"name": "render", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": plays[0]["vars"],
             "tasks": [{"ansible.builtin.template": {"src": str(template), "dest": str(out)}}]}]
    path = workdir / "render.yml"
    path.write_text(json.dumps(play))
    extra = ["-e", f"ansible_python_interpreter={ANSIBLE_VENV / 'bin/python3'}"]
    if extra_vars:
        extra += ["-e", "@" + str(vars_file(workdir, extra_vars, "render-vars.json"))]
    done = run_playbook(inventory, path, *extra, timeout=300, workdir=workdir)
    if done.returncode != 0:
        raise FleetError("rendering the template failed:\n" + done.stdout[-4000:] + done.stderr[-2000:])
    return out.read_text()


def render_config(workdir: Path, inventory: Path = EXAMPLE_INVENTORY, extra_vars: dict | None = None) -> str:
    """haproxy.cfg as the balancer play writes it for INVENTORY and EXTRA_VARS."""
    return render_template(workdir, TEMPLATE, inventory, extra_vars)


def render_keys_map(workdir: Path, extra_vars: dict) -> str:
    """The balancer's key map as its play writes it (EXTRA_VARS with hos_balancer_api_keys)."""
    return render_template(workdir, KEYS_MAP_TEMPLATE, EXAMPLE_INVENTORY, extra_vars)


def vars_file(workdir: Path, values: dict, name: str = "vars.json") -> Path:
    """VALUES as a file for `-e @FILE`, readable by root only (it may hold keys)."""
    path = workdir / name
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(values))
    return path


# ------------------------------------------------------------ HAProxy off the containers
HOST_HAPROXY = Path("/usr/sbin/haproxy")
# The global lines of the example that need the balancer host itself
# (its syslog socket, chroot, stats socket, user, daemon mode).
_HOST_ONLY = re.compile(r"^    (log /dev/log|chroot|stats socket|user|group|daemon)\b")


def haproxy_command(where: str, directory: Path) -> list[str]:
    """The command line of an HAProxy that can read the files in DIRECTORY:
    "host" this host's (bookworm's 2.6 on a bookworm host), "trixie" the one
    of the balancer root (trixie's 3.0), run from that cached root kept
    read-only (systemd-nspawn; this host's network, DIRECTORY at its own path)."""
    if where == "host":
        return [str(HOST_HAPROXY)]
    if where != "trixie":
        raise FleetError(f"no HAProxy {where!r}")
    root = harness.ensure_root(suite="trixie", flavour="balancer")
    return ["systemd-nspawn", "-q", "-D", str(root), "--read-only", "--tmpfs=/tmp:mode=1777",
            "--tmpfs=/var/tmp:mode=1777", "--register=no", "--keep-unit", "--as-pid2", "--console=pipe",
            f"--bind-ro={directory}:{directory}", "--", "/usr/sbin/haproxy"]


def haproxy_check(where: str, config: Path) -> subprocess.CompletedProcess:
    """`haproxy -c -f CONFIG` (see haproxy_command); output in stdout."""
    return subprocess.run([*haproxy_command(where, config.parent), "-c", "-f", str(config)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)


def foreground_config(text: str) -> str:
    """A rendered haproxy.cfg that runs in the foreground off the balancer
    host (no chroot, stats socket, syslog socket, user or daemon mode);
    everything else as rendered."""
    out, in_global = [], False
    for line in text.splitlines(keepends=True):
        if not line.startswith((" ", "\n")):
            in_global = line.startswith("global")
        if in_global and _HOST_ONLY.match(line):
            continue
        out.append(line)
    return "".join(out)


# ------------------------------------------------------------ API keys
def new_api_key() -> str:
    """A key as `hailo-ollama-service keys add` makes them: hos_ and 256 random bits in base64url."""
    return "hos_" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What a Pi and the balancer store of KEY: its SHA-256, lowercase hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def render_example_config(workdir: Path) -> str:
    """What examples/haproxy/haproxy.cfg holds: the template for the example inventory."""
    return render_config(workdir)


# ------------------------------------------------------------ containers
def ssh_access(c: harness.Container, key: Path) -> None:
    """Let root in over SSH with KEY (as test_86 does)."""
    c.exec(["install", "-d", "-m", "0700", "/root/.ssh"])
    c.write_file("/root/.ssh/authorized_keys", key.with_suffix(".pub").read_text(), mode=0o600)
    c.exec(["systemctl", "start", "ssh.service"])


def new_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                       timeout=60)
    return key


def link(balancer: harness.Container, pi: harness.Container, k: int) -> str:
    """A point-to-point veth link between BALANCER and PI (link number K,
    1..250): interface pi<K> (10.214.K.1/30) on the balancer, lan0
    (10.214.K.2/30) on the Pi. Returns the Pi's address on it."""
    if not (balancer.net and pi.net):
        raise FleetError("both containers need their network first (boot them)")
    a, b = balancer.net.name, pi.net.name
    ours, theirs = f"{LAN_PREFIX}.{k}.1", f"{LAN_PREFIX}.{k}.2"
    for cmd in (["ip", "-n", a, "link", "add", f"pi{k}", "type", "veth", "peer", "name", "lan0", "netns", b],
                ["ip", "-n", a, "addr", "add", f"{ours}/30", "dev", f"pi{k}"],
                ["ip", "-n", b, "addr", "add", f"{theirs}/30", "dev", "lan0"],
                ["ip", "-n", a, "link", "set", f"pi{k}", "up"],
                ["ip", "-n", b, "link", "set", "lan0", "up"]):
        harness.host_run(cmd)
    return theirs


def standin_knob(c: harness.Container, name: str, value) -> None:
    """A stand-in test knob (read at every use, no restart needed)."""
    c.write_file(f"{product.STANDIN_CONTROL}/{name}", f"{value}\n")


@dataclass
class Fleet:
    pis: list[harness.Container]
    balancer: harness.Container
    lan: dict[str, str]  # Pi's inventory name -> its address on the balancer's LAN
    key: Path
    workdir: Path

    @property
    def names(self) -> list[str]:
        """The Pis' inventory names (their host addresses), as the balancer names them."""
        return [pi.ip for pi in self.pis]

    def inventory(self, pis: list[harness.Container] | None = None) -> Path:
        """An inventory of PIS (default: all) and the balancer, reached over SSH as root."""
        pis = self.pis if pis is None else pis
        common = (f"ansible_user=root ansible_ssh_private_key_file={self.key} "
                  "ansible_python_interpreter=/usr/bin/python3 "
                  "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'")
        lines = ["[hailo_pis]"]
        lines += [f"{pi.ip} hos_api_address={self.lan[pi.ip]} {common}" for pi in pis]
        lines += ["", "[hailo_balancers]", f"{self.balancer.ip} {common}", ""]
        path = self.workdir / f"inventory-{len(pis)}.ini"
        path.write_text("\n".join(lines))
        return path

    def destroy(self) -> None:
        try:
            close_ssh_masters(self.workdir)
        except Exception as e:  # tear down the rest
            harness.log(f"closing SSH connections failed: {e}")
        for c in [self.balancer, *self.pis]:
            # root's user manager, started by the SSH logins, does not stop
            # in these containers: poweroff would wait for it (60 s and more)
            try:
                if c.running:
                    c.exec(["systemctl", "kill", "--signal=SIGKILL", "user@0.service"], check=False, timeout=20)
            except Exception as e:
                harness.log(f"{c.name}: {e}")
        for c in [self.balancer, *self.pis]:
            try:
                c.destroy()
            except Exception as e:  # tear down the rest
                harness.log(f"teardown of {c.name} failed: {e}")


def boot_fleet(n: int, workdir: Path, name: str = "fleet", pi_flavour: str | None = None) -> Fleet:
    """N Pi containers and a balancer container, booted and linked; nothing
    installed yet. PI_FLAVOUR: the root flavour of the Pis (default the base
    root; "access" gives them what the access front needs: haproxy, ssl-cert).
    The caller destroys it (Fleet.destroy)."""
    flavour = harness.ensure_root(flavour="balancer")
    base = harness.ensure_root(flavour=pi_flavour) if pi_flavour else harness.ensure_root()
    made: list[harness.Container] = []
    try:
        pis = []
        for i in range(1, n + 1):
            c = harness.Container(f"{name}-pi{i}", root=base)
            made.append(c)
            c.boot()
            pis.append(c)
        balancer = harness.Container(f"{name}-balancer", root=flavour)
        made.append(balancer)
        balancer.boot()
        key = new_key(workdir)
        lan = {}
        for k, pi in enumerate(pis, start=1):
            lan[pi.ip] = link(balancer, pi, k)
        for c in made:
            ssh_access(c, key)
        return Fleet(pis, balancer, lan, key, workdir)
    except BaseException:
        for c in made:
            c.destroy()
        raise


@contextlib.contextmanager
def running_fleet(n: int, workdir: Path, name: str, token_delay: float, pi_flavour: str | None = None):
    """A context of N Pis (each prepared with TOKEN_DELAY) and the balancer,
    booted and linked, nothing installed; destroyed on leaving. Raises
    harness.HarnessError or FleetError when it cannot be booted."""
    f = boot_fleet(n, workdir, name=name, pi_flavour=pi_flavour)
    try:
        for pi in f.pis:
            prepare_pi(pi, token_delay)
        yield f
    finally:
        f.destroy()


def prepare_pi(pi: harness.Container, token_delay: float, load_delay: float | None = None) -> None:
    """A usable device node and the stand-in's timing (before or after the install)."""
    pi.add_device()
    standin_knob(pi, "token-delay", token_delay)
    if load_delay is not None:
        standin_knob(pi, "load-delay", load_delay)


# ------------------------------------------------------------ the balancer
def haproxy_servers(balancer: harness.Container, backend: str = f"{POOL}_generate") -> dict[str, dict]:
    """Server name -> its row of HAProxy's statistics (CSV: status, scur, smax, stot, qcur, ...)."""
    r = balancer.exec(["curl", "-fsS", "--max-time", "5", f"http://{STATS}/;csv"], check=False, timeout=20)
    if r.rc != 0:
        raise FleetError(f"HAProxy's statistics did not answer: {r.output[-1000:]}")
    rows = csv.DictReader(io.StringIO(r.stdout.lstrip("# ")))
    return {row["svname"]: row for row in rows
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}


def backend_row(balancer: harness.Container, backend: str = f"{POOL}_generate") -> dict:
    r = balancer.exec(["curl", "-fsS", "--max-time", "5", f"http://{STATS}/;csv"], timeout=20)
    for row in csv.DictReader(io.StringIO(r.stdout.lstrip("# "))):
        if row["pxname"] == backend and row["svname"] == "BACKEND":
            return row
    raise FleetError(f"no backend {backend} in HAProxy's statistics")


def wait_server_status(balancer, server: str, prefix: str, timeout: float = 30) -> float:
    """Seconds until SERVER's status starts with PREFIX ('UP', 'DOWN'); raises FleetError after TIMEOUT."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        row = haproxy_servers(balancer).get(server)
        last = row and row["status"]
        if last and last.split()[0] == prefix:  # "UP", not "UP 1/2" (going down)
            if len(last.split()) == 1:
                return time.monotonic() - t0
        time.sleep(0.25)
    raise FleetError(f"server {server} still {last!r}, not {prefix}, after {timeout}s")


# HAProxy's httplog line: ... BACKEND/SERVER TR/Tw/Tc/Tr/Ta STATUS BYTES ... act/fe/be/srv/retries srvq/beq "REQUEST"
_LOG = re.compile(r" (?P<backend>\S+)/(?P<server>\S+) (?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/"
                  r"(?P<Ta>-?\d+) (?P<status>\d{3}) .* \d+/\d+/\d+/\d+/\+?(?P<retries>\d+) \d+/\d+ \"")


def request_log(balancer: harness.Container, since: str, backend: str = f"{POOL}_generate") -> list[dict]:
    """HAProxy's log of the requests to BACKEND since SINCE (the container's
    clock): server, status and the times in ms: Tw waiting in HAProxy's
    queue, Tr from sending the request to the Pi until its answer began."""
    text = balancer.journal(unit="haproxy.service", lines=5000, since=since, extra=("-o", "cat"))
    out = []
    for line in text.splitlines():
        m = _LOG.search(line)
        if m and m["backend"] == backend:
            out.append({"server": m["server"], "status": int(m["status"]), "retries": int(m["retries"]),
                        **{k: int(m[k]) for k in ("Tw", "Tc", "Tr", "Ta")}})
    return out


def wait_request_log(balancer, since: str, count: int, timeout: float = 15, **kw) -> list[dict]:
    """request_log() once it holds COUNT requests (logged as they end), or what it has after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        log = request_log(balancer, since, **kw)
        if len(log) >= count or time.monotonic() > deadline:
            return log
        time.sleep(0.5)


# ------------------------------------------------------------ clients
@dataclass
class Chat:
    """One /api/chat as a client sees it (times in seconds from its start)."""
    status: int = 0
    served_by: str | None = None
    content: str = ""
    done: bool = False
    lines: int = 0
    t_headers: float | None = None
    t_first: float | None = None
    t_last: float | None = None
    started: float = 0.0  # time.monotonic() at the start
    error: str | None = None
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.done and self.content == ANSWER and self.error is None


def chat(host: str, port: int = BALANCER_PORT, model: str = MODEL, stream: bool = True,
         timeout: float = 120, prompt: str = "Hello", key: str | None = None) -> Chat:
    """POST /api/chat as an Ollama client does (with KEY: Authorization:
    Bearer KEY), reading the NDJSON lines as they come."""
    result = Chat(started=time.monotonic())
    t0 = result.started
    body = json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": prompt}]})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        conn.request("POST", "/api/chat", body, headers)
        resp = conn.getresponse()
        result.status = resp.status
        result.t_headers = time.monotonic() - t0
        result.served_by = resp.getheader("X-Served-By")
        if resp.status != 200 or not stream:
            result.body = resp.read().decode(errors="replace")
            if resp.status == 200:
                answer = json.loads(result.body)
                result.content = answer.get("message", {}).get("content", "")
                result.done = bool(answer.get("done"))
                result.lines = 1
                result.t_first = result.t_last = time.monotonic() - t0
            return result
        deadline = t0 + timeout
        for raw in resp:
            if not raw.strip():
                continue
            now = time.monotonic() - t0
            if result.t_first is None:
                result.t_first = now
            result.t_last = now
            result.lines += 1
            line = json.loads(raw)
            if "error" in line:
                result.error = str(line["error"])
            result.content += line.get("message", {}).get("content", "")
            if line.get("done"):
                result.done = True
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream longer than {timeout}s")
    except (OSError, http.client.HTTPException, ValueError) as e:
        result.error = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return result


@dataclass
class Answer:
    """One HTTP answer: status, headers (lowercase names; the last of each), body text."""
    status: int
    headers: dict[str, str]
    body: str

    def json(self):
        return json.loads(self.body)


def request(host: str, port: int, method: str, path: str, body=None, key: str | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60) -> Answer:
    """One request (with KEY: Authorization: Bearer KEY; BODY: JSON), its whole answer."""
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, data, sent)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, text)
    finally:
        conn.close()


def concurrent_chats(host: str, n: int, port: int = BALANCER_PORT, timeout: float = 180,
                     stagger: float = 0.0, **kw) -> list[Chat]:
    """N chats started together (STAGGER seconds apart), one thread each; all bounded by TIMEOUT."""
    results: list[Chat | None] = [None] * n
    start = threading.Barrier(n) if not stagger else None

    def one(i: int) -> None:
        if start:
            try:
                start.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
        else:
            time.sleep(i * stagger)
        results[i] = chat(host, port, timeout=timeout, **kw)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 30 + n * stagger
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    return [r if r is not None else Chat(error="no answer within the bound") for r in results]


if __name__ == "__main__":
    if sys.argv[1:] != ["example-config"]:
        raise SystemExit("usage: fleet.py example-config   (writes examples/haproxy/haproxy.cfg)")
    with tempfile.TemporaryDirectory() as tmp:
        EXAMPLE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        EXAMPLE_CONFIG.write_text(render_example_config(Path(tmp)))
    print(f"wrote {EXAMPLE_CONFIG}")
