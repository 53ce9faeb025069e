"""One endpoint for N Pis (issue 11): HAProxy in front of the fleet, booted.

Three Pi containers (the stand-in upstream with a usable device node, and
our package) and a fourth container as the balancer host (the root flavour
`balancer`: Debian's haproxy already in it, since containers have no
network), linked to each Pi by a LAN link of its own (tests/system/fleet.py).
The Ansible example (examples/ansible/playbook.yml, which imports
balancer.yml) sets up all four over real SSH in one run, as it would a real
fleet; a second run changes nothing. Then, through the balancer:
concurrent chats all answer, one at a time per Pi with the rest queued in
HAProxy, streamed line by line; a Pi whose service is stopped loses no
request that had not started on it, is taken out and put back by itself;
the `ollama` Python client from PyPI lists and generates, and its chat()
comes back exactly as from a Pi (see below). The plain example
config (examples/haproxy/haproxy.cfg) is the template rendered by Ansible
for the example inventory.

API keys (issue 20), first without a container: the template rendered
with keys (hos_balancer_api_keys, hos_balancer_pi_key) passes `haproxy -c`
of bookworm (this host's, when installed) and trixie, adds lines and
changes none, asks for keys on the routes a Pi does, and, run in front of
a recording stand-in for a Pi, answers 401/403 itself and passes on the
balancer's key in place of the client's; without them it renders as
before. Then booted, last: the same playbook turns access on on the Pis
(their root has Debian's haproxy, for the access front) with the
balancer's key installed by its hash, and keys on the balancer; a user key
chats through it, no key gets its 401, a user key cannot pull, and the
Pis take the balancer's key, never the client's.

Release independent: the balancer is a LAN host of the admin's choice, and
nothing of it differs between the Pis' releases (runs on trixie).
"""

import difflib
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import fleet as fleet_mod
import harness
import product
from fleet import ANSWER, MODEL, POOL

pytestmark = [pytest.mark.system, pytest.mark.release_independent]

# 8 tokens of 0.25 s: a chat takes 2 s on a Pi (plus 0.5 s for the model's
# first load there), so requests overlap and queue at the balancer.
TOKEN_DELAY = 0.25
CHAT_SECONDS = 8 * TOKEN_DELAY


@pytest.fixture(scope="module")
def fleet(base_root, tmp_path_factory):
    """Three Pis and the balancer host, booted and linked, nothing installed.
    The Pis' root is the flavour "access" (Debian's haproxy and ssl-cert,
    unused until the last tests turn access on: containers have no network
    to install them then)."""
    try:
        with fleet_mod.running_fleet(3, tmp_path_factory.mktemp("fleet"), "bal", TOKEN_DELAY, "access") as f:
            yield f
    except (harness.HarnessError, fleet_mod.FleetError) as e:
        pytest.fail(f"cannot boot the fleet: {e}", pytrace=False)


@pytest.fixture(scope="module")
def ansible_playbook():
    try:
        return fleet_mod.ansible_playbook()
    except fleet_mod.FleetError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def deployed(fleet, ansible_playbook, hos_deb, debs):
    """The whole example playbook over SSH on the fleet's inventory, twice."""
    inventory = fleet.inventory()
    common = ["-e", f"hos_deb={hos_deb}", "-e", f"hailo_model_zoo_deb={debs.standin('5.1.1')}"]
    first = fleet_mod.run_playbook(inventory, fleet_mod.PLAYBOOK, *common)
    second = fleet_mod.run_playbook(inventory, fleet_mod.PLAYBOOK, *common) if first.returncode == 0 else None
    return SimpleNamespace(first=first, second=second, inventory=inventory)


@pytest.fixture(scope="module")
def ready(fleet, deployed):
    """The deployed fleet with the model on every Pi and every Pi UP at the balancer."""
    if deployed.first.returncode != 0:
        pytest.fail("the example playbook failed:\n" + deployed.first.stdout[-5000:]
                    + deployed.first.stderr[-2000:], pytrace=False)
    for pi in fleet.pis:
        product.ensure_pulled(pi, MODEL)
    for name in fleet.names:
        fleet_mod.wait_server_status(fleet.balancer, name, "UP", timeout=30)
    return fleet


def served_by(chats) -> "dict[str, int]":
    out: dict[str, int] = {}
    for c in chats:
        out[c.served_by] = out.get(c.served_by, 0) + 1
    return out


def describe(chats) -> str:
    return "\n".join(f"  status={c.status} by={c.served_by} lines={c.lines} done={c.done} "
                     f"headers={c.t_headers} first={c.t_first} last={c.t_last} error={c.error} "
                     f"content={c.content!r} body={c.body[:200]!r}" for c in chats)


def test_the_plain_example_config_is_the_template_rendered_for_the_example_inventory(ansible_playbook, tmp_path):
    rendered = fleet_mod.render_example_config(tmp_path)
    assert "server pi-01.local pi-01.local:11434" in rendered
    assert rendered == fleet_mod.EXAMPLE_CONFIG.read_text(), (
        "examples/haproxy/haproxy.cfg differs from the template rendered for examples/ansible/inventory.ini:"
        " run `sudo /usr/bin/python3 tests/system/fleet.py example-config`")


def test_one_pool_per_model_renders_a_url_each_that_haproxy_accepts(ready, tmp_path):
    """hos_balancer_pools: two inventory groups, two ports, the Pis of each
    only in its own backends; haproxy -c on the balancer accepts it."""
    inventory = tmp_path / "pools.ini"
    inventory.write_text("[pis_qwen]\npi-01.lan hos_api_address=10.0.0.1\npi-02.lan ansible_host=10.0.0.2\n\n"
                         "[pis_llama]\npi-03.lan hos_api_port=11500\n")
    pools = {"hos_balancer_pools": [{"name": "qwen", "group": "pis_qwen", "port": 11434},
                                    {"name": "llama", "group": "pis_llama", "port": 11435}]}
    config = fleet_mod.render_config(tmp_path, inventory, pools)
    sections = {}  # "frontend qwen" -> its lines
    for block in config.split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
        if lines:
            sections[lines[0]] = lines[1:]

    def servers(section):
        return [line for line in sections[section] if line.startswith("server ")]

    assert "bind :11434" in sections["frontend qwen"] and "bind :11435" in sections["frontend llama"]
    assert "use_backend qwen_generate if generation" in sections["frontend qwen"]
    assert "use_backend llama_generate if generation" in sections["frontend llama"]
    assert servers("backend qwen_generate") == ["server pi-01.lan 10.0.0.1:11434", "server pi-02.lan 10.0.0.2:11434"]
    assert servers("backend llama_generate") == ["server pi-03.lan pi-03.lan:11500"]
    assert servers("backend llama_api") == ["server pi-03.lan pi-03.lan:11500 track llama_generate/pi-03.lan"]
    assert len(servers("backend qwen_api")) == 2
    ready.balancer.write_file("/root/pools.cfg", config)
    check = ready.balancer.exec(["haproxy", "-c", "-f", "/root/pools.cfg"], check=False)
    assert check.rc == 0, check.output


def test_one_run_sets_up_the_pis_and_the_balancer_and_a_second_changes_nothing(fleet, deployed):
    first, second = deployed.first, deployed.second
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    hosts = set(fleet.names) | {fleet.balancer.ip}
    recap = fleet_mod.recaps(first)
    assert set(recap) == hosts, recap
    assert all("failed=0" in line and "unreachable=0" in line for line in recap.values()), recap
    assert "changed=0" not in recap[fleet.balancer.ip], "the first run changed nothing on the balancer"

    assert second is not None and second.returncode == 0, second and second.stdout[-6000:]
    again = fleet_mod.recaps(second)
    assert set(again) == hosts and all("changed=0" in line and "failed=0" in line for line in again.values()), again

    b = fleet.balancer
    assert product.is_active(b, "haproxy.service") == "active"
    assert product.is_enabled(b, "haproxy.service") == "enabled"
    config = b.read_file("/etc/haproxy/haproxy.cfg")
    for pi in fleet.pis:
        assert f"server {pi.ip} {fleet.lan[pi.ip]}:11434\n" in config, config
        assert f"server {pi.ip} {fleet.lan[pi.ip]}:11434 track {POOL}_generate/{pi.ip}\n" in config
        assert product.answers(pi), f"{pi.name} does not answer"
    assert b.exec(["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg"], check=False).rc == 0
    # the balancer answers for the fleet, on its own address
    status, body = product.api(b, "GET", "/api/version", port=fleet_mod.BALANCER_PORT)
    assert status == 200 and "version" in body
    # and shows its queue to Prometheus (on the balancer itself)
    metrics = b.exec(["curl", "-fsS", "--max-time", "5", f"http://{fleet_mod.STATS}/metrics"]).stdout
    assert f'haproxy_backend_current_queue{{proxy="{POOL}_generate"}}' in metrics, metrics[:2000]


def test_concurrent_chats_all_answer_one_at_a_time_per_pi_streamed_as_they_come(ready):
    b = ready.balancer
    before = {name: int(row["stot"]) for name, row in fleet_mod.haproxy_servers(b).items()}
    since = b.now()
    t0 = time.monotonic()
    chats = fleet_mod.concurrent_chats(b.ip, 9, timeout=120)
    wall = time.monotonic() - t0
    assert all(c.ok for c in chats), describe(chats)
    by = served_by(chats)
    assert set(by) == set(ready.names), f"not spread over every Pi: {by}"

    servers = fleet_mod.haproxy_servers(b)
    # HAProxy never had more than one request on a Pi; the others waited in its queue
    assert all(int(row["smax"]) == 1 for row in servers.values()), {n: r["smax"] for n, r in servers.items()}
    assert sum(int(row["stot"]) - before[name] for name, row in servers.items()) == 9
    assert int(fleet_mod.backend_row(b)["qmax"]) >= 3, "no request ever waited in HAProxy's queue"
    # HAProxy's log: six waited in its queue, and none waited on a Pi (a Pi
    # answers at once, or after a model load: never after another generation)
    log = fleet_mod.wait_request_log(b, since, 9)
    assert len(log) == 9 and all(r["status"] == 200 for r in log), log
    assert sum(1 for r in log if r["Tw"] >= 1000 * CHAT_SECONDS / 2) >= 6, log
    assert all(r["Tr"] < 1000 * CHAT_SECONDS * 0.75 for r in log), log
    # three Pis together: well below the time one Pi takes for nine (18 s)
    assert wall < 9 * CHAT_SECONDS * 0.7, f"9 chats over 3 Pis took {wall:.1f}s"
    # streaming passes through: the lines come as the tokens do, not all at the end
    for c in chats:
        assert c.lines == 9, describe([c])
        assert c.t_last - c.t_first >= 5 * TOKEN_DELAY, f"the answer came in one go:\n{describe([c])}"


def test_a_pi_taken_down_loses_no_waiting_request_and_is_taken_out_and_put_back(ready):
    b, pi1 = ready.balancer, ready.pis[0]
    name1 = pi1.ip
    results = []
    since = b.now()
    burst = fleet_mod.threading.Thread(
        target=lambda: results.extend(fleet_mod.concurrent_chats(b.ip, 12, timeout=150)), daemon=True)
    burst.start()
    time.sleep(1.0)  # three chats in flight (one per Pi), nine waiting in HAProxy's queue
    queued = int(fleet_mod.backend_row(b)["qcur"])
    stopped_at = time.monotonic()
    pi1.systemctl("stop", product.UNIT, check=True, timeout=60)
    burst.join(timeout=200)
    assert not burst.is_alive() and len(results) == 12
    assert queued >= 6, f"only {queued} requests waited in the queue when the Pi was stopped"

    # every request answered but, at most, the one that had started on the stopped Pi
    lost = [c for c in results if not c.ok]
    assert len(lost) <= 1, describe(results)
    for c in lost:
        assert c.served_by == name1 and c.started + (c.t_headers or 0) < stopped_at + 1, describe(results)
    assert sum(1 for c in results if c.ok) >= 11
    # none of them waited on a Pi behind another generation: the ones that
    # would have gone to the stopped Pi waited in HAProxy's queue instead
    answered = [r for r in fleet_mod.wait_request_log(b, since, 12) if r["status"] == 200]
    assert len(answered) >= 11 and all(r["Tr"] < 1000 * CHAT_SECONDS * 0.75 for r in answered), answered

    # the balancer noticed (its health check) and sends nothing there
    fleet_mod.wait_server_status(b, name1, "DOWN", timeout=20)
    row = fleet_mod.haproxy_servers(b)[name1]
    assert row["check_status"].startswith("L4"), row  # connection refused: nothing listens
    after = fleet_mod.concurrent_chats(b.ip, 6, timeout=120)
    assert all(c.ok for c in after), describe(after)
    assert name1 not in served_by(after), describe(after)

    # back by itself once its service answers again
    pi1.systemctl("start", product.UNIT, check=True, timeout=120)
    assert product.wait_answering(pi1, timeout=60)
    fleet_mod.wait_server_status(b, name1, "UP", timeout=30)
    since_back = b.now()
    back = fleet_mod.concurrent_chats(b.ip, 3, timeout=120)
    assert all(c.ok for c in back), describe(back)
    # one chat per Pi: none waits behind another while a Pi idles (one
    # HAProxy thread picks a Pi and counts the connection in one step)
    assert set(served_by(back)) == set(ready.names), (
        describe(back) + "\nHAProxy: " + repr(fleet_mod.wait_request_log(b, since_back, 3)))


# What an Ollama user does with the `ollama` package. Its chat() sends
# `"tools": []` with every request, which Hailo's server 5.1 (and 5.3) maps
# to a string field and refuses (500 "Node is NOT a STRING"; checked against
# the real 5.1.1 server, and the stand-in does the same): so chat() is
# compared with the same call straight to a Pi, and must come back through
# the balancer exactly as it comes from the Pi.
OLLAMA_SCRIPT = r"""
import json, sys
import ollama

client = ollama.Client(host=sys.argv[1], timeout=120)
model = sys.argv[2]
out = {"models": sorted(m.model for m in client.list().models)}
answer = client.generate(model=model, prompt="Hello")
out["generate"] = [answer.response, answer.done]
out["generate_stream"] = [part.response for part in client.generate(model=model, prompt="Hello", stream=True)]
try:
    chat = client.chat(model=model, messages=[{"role": "user", "content": "Hello"}])
    out["chat"] = [chat.message.content, chat.done]
except ollama.ResponseError as e:
    out["chat"] = {"status": e.status_code, "error": e.error}
print(json.dumps(out))
"""

LIST_SCRIPT = r"""
import json, sys, time
import ollama

t0 = time.monotonic()
models = [m.model for m in ollama.Client(host=sys.argv[1], timeout=30).list().models]
print(json.dumps({"models": models, "seconds": time.monotonic() - t0}))
"""


@pytest.fixture(scope="module")
def ollama_client_python():
    try:
        return fleet_mod.ollama_python()
    except (fleet_mod.FleetError, subprocess.SubprocessError) as e:
        pytest.fail(f"cannot install the ollama client from PyPI: {e}", pytrace=False)


def as_ollama_user(python, url: str, script: str = OLLAMA_SCRIPT, *args) -> dict:
    done = subprocess.run([str(python), "-c", script, url, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_ollama_python_client_lists_and_generates_through_the_balancer_as_from_a_pi(ready, ollama_client_python):
    balancer = as_ollama_user(ollama_client_python, f"http://{ready.balancer.ip}:{fleet_mod.BALANCER_PORT}",
                              OLLAMA_SCRIPT, MODEL)
    assert MODEL in balancer["models"], balancer
    assert balancer["generate"] == [ANSWER, True], balancer
    assert "".join(balancer["generate_stream"]) == ANSWER and len(balancer["generate_stream"]) > 1, balancer
    if balancer["chat"] != [ANSWER, True]:  # upstream 5.1 refuses the client's "tools": []
        assert balancer["chat"]["status"] == 500 and "Node is NOT a STRING" in balancer["chat"]["error"], balancer
    # through the balancer exactly what a Pi answers itself
    direct = as_ollama_user(ollama_client_python, f"http://{ready.pis[1].ip}:11434", OLLAMA_SCRIPT, MODEL)
    assert balancer == direct
    # a 500 of a Pi does not take it out: only a refused connection does
    assert all(row["status"] == "UP" for row in fleet_mod.haproxy_servers(ready.balancer).values())


def test_listing_is_not_queued_behind_generations(ready, ollama_client_python):
    """With every Pi busy and more chats waiting in HAProxy's queue, the
    client's list() still answers at once: only generations are queued."""
    url = f"http://{ready.balancer.ip}:{fleet_mod.BALANCER_PORT}"
    results = []
    busy = fleet_mod.threading.Thread(
        target=lambda: results.extend(fleet_mod.concurrent_chats(ready.balancer.ip, 6, timeout=120)), daemon=True)
    busy.start()
    time.sleep(1.0)
    waiting = int(fleet_mod.backend_row(ready.balancer)["qcur"])
    listed = as_ollama_user(ollama_client_python, url, LIST_SCRIPT)
    busy.join(timeout=150)
    assert waiting >= 1, "no chat was waiting while the list ran"
    assert MODEL in listed["models"] and listed["seconds"] < CHAT_SECONDS, listed
    assert len(results) == 6 and all(c.ok for c in results), describe(results)



# ------------------------------------------------------------ API keys, without a container
def keys_vars(keys_map: Path | str = fleet_mod.KEYS_MAP, pi_key: str | None = None, api_keys=None) -> dict:
    """Extra vars of the balancer play: its key map at KEYS_MAP, the Pis' key, the clients' keys."""
    out: dict = {"hos_balancer_keys_map": str(keys_map)}
    if pi_key is not None:
        out["hos_balancer_pi_key"] = pi_key
    if api_keys is not None:
        out["hos_balancer_api_keys"] = api_keys
    return out


@pytest.fixture(scope="module")
def client_keys():
    """A user key, an admin key (its hash given in upper case: the play lowers it) and the Pis' key."""
    user, admin, pi = (fleet_mod.new_api_key() for _ in range(3))
    return SimpleNamespace(user=user, admin=admin, pi=pi, api_keys=[
        {"name": "alice", "sha256": fleet_mod.key_hash(user), "role": "user"},
        {"name": "ops", "sha256": fleet_mod.key_hash(admin).upper(), "role": "admin"}])


def haproxy_places() -> list:
    """Where `haproxy` runs in the tests below: this host's (bookworm's 2.6 here; skipped when
    not installed) and trixie's (from the balancer root)."""
    return [pytest.param("host", marks=pytest.mark.skipif(not fleet_mod.HOST_HAPROXY.exists(),
                                                          reason="no haproxy on this host")),
            "trixie"]


def test_without_keys_the_balancer_config_is_what_it_was(ansible_playbook, tmp_path):
    """Unset, null or empty, hos_balancer_pi_key and a null hos_balancer_api_keys render the
    example config byte for byte (the example inventory)."""
    example = fleet_mod.EXAMPLE_CONFIG.read_text()
    for extra in ({"hos_balancer_pi_key": ""}, {"hos_balancer_pi_key": None, "hos_balancer_api_keys": None}):
        assert fleet_mod.render_config(tmp_path, extra_vars=extra) == example, extra
    assert "Authorization" not in example and "http_auth_bearer" not in example


@pytest.mark.parametrize("where", haproxy_places())
def test_with_keys_the_config_adds_lines_changes_none_and_haproxy_accepts_it(
        ansible_playbook, client_keys, tmp_path, where):
    keys_map = tmp_path / "hailo-ollama-keys.map"
    extra = keys_vars(keys_map, client_keys.pi, client_keys.api_keys)
    config = fleet_mod.render_config(tmp_path, extra_vars=extra)
    keys_map.write_text(fleet_mod.render_keys_map(tmp_path, extra))

    # the map: a hash and a role a line, lowercase, and never a key
    entries = [line.split() for line in keys_map.read_text().splitlines() if line and not line.startswith("#")]
    assert sorted(entries) == sorted([[fleet_mod.key_hash(client_keys.user), "user"],
                                      [fleet_mod.key_hash(client_keys.admin), "admin"]]), entries
    # the client's keys are in neither file; the Pis' key only in the backends
    for key in (client_keys.user, client_keys.admin):
        assert key not in config and key not in keys_map.read_text()
    assert config.count(f'http-request set-header Authorization "Bearer {client_keys.pi}"\n') == 2
    assert f"map({keys_map})" in config

    # nothing of the plain config is changed or dropped: the queue, the
    # health checks (no key), the retries as they were
    plain = fleet_mod.EXAMPLE_CONFIG.read_text().splitlines()
    diff = [line for line in difflib.ndiff(plain, config.splitlines()) if line[:1] in "-+?"]
    assert not [line for line in diff if not line.startswith("+ ")], "\n".join(diff)
    for line in ("    http-check send meth GET uri /api/version",
                 "    default-server check inter 2s fall 2 rise 2 observe layer4 error-limit 1 on-error "
                 "mark-down maxconn 1"):
        assert line in plain and line in config.splitlines()

    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    check = fleet_mod.haproxy_check(where, path)
    assert check.returncode == 0, check.stdout
    # no warning but the example's own (its Pis' names do not resolve here)
    warnings = [line for line in check.stdout.splitlines()
                if re.search(r"\[(WARNING|ALERT)\]", line) and "could not resolve address" not in line]
    assert not warnings, check.stdout


def test_the_balancer_asks_for_keys_on_the_routes_a_pi_does(ansible_playbook, client_keys, tmp_path):
    """The rules of the balancer's frontend are the access front's (config.access), line by
    line: the same routes per role, the same 401 and 403, /api/version open."""
    if str(product.REPO) not in sys.path:
        sys.path.insert(0, str(product.REPO))
    from hailo_ollama_service.config.access import front_config
    from hailo_ollama_service.config.schema import DEFAULTS

    rules = re.compile(r"^    (acl (public|public_method|user_route) |http-request (set-var|return|del-header))")
    pi = front_config(dict(DEFAULTS, **{"access.enabled": True}), "/BASE", False).decode()
    pi_rules = [line.replace("map(/BASE/keys.map)", f"map({fleet_mod.KEYS_MAP})")
                for line in pi.splitlines() if rules.match(line)]
    config = fleet_mod.render_config(tmp_path, extra_vars=keys_vars(api_keys=client_keys.api_keys))
    ours = [line for line in config.splitlines() if rules.match(line)]
    assert len(pi_rules) >= 8 and ours == pi_rules, "\n".join(difflib.unified_diff(pi_rules, ours, "pi", "balancer",
                                                                                    lineterm=""))


class PiStandIn:
    """A recording stand-in for a Pi on 127.0.0.1: what each request came with (method, path,
    every Authorization header); answers as a Pi would, in one piece."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[str]]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.seen.append((self.command, self.path, self.headers.get_all("Authorization") or []))
                if "chat" in self.path:
                    doc = {"model": MODEL, "message": {"role": "assistant", "content": ANSWER}, "done": True}
                elif "version" in self.path:
                    doc = {"version": "5.1.1"}
                else:
                    doc = {"status": "success"}
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def do_DELETE(self) -> None:  # noqa: N802
                self._answer()

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def checks(self) -> list:
        """The requests without an Authorization header that were not ours: HAProxy's checks."""
        return [s for s in self.seen if not s[2]]


@pytest.fixture
def local_balancer(ansible_playbook, tmp_path):
    """start(where, extra_vars): the template rendered by the play for one stand-in Pi,
    run in the foreground by HAProxy (see fleet.haproxy_command) on 127.0.0.1; returns
    (the stand-in, the balancer's port)."""
    started: list = []

    def start(where: str, extra: dict):
        pi = PiStandIn()
        started.append(pi)
        port, stats = harness.free_port(), harness.free_port()
        inventory = tmp_path / "local.ini"
        inventory.write_text(f"[hailo_pis]\nfake-pi hos_api_address=127.0.0.1 hos_api_port={pi.port}\n")
        extra = dict(extra, hos_balancer_pools=[{"name": "hailo", "group": "hailo_pis", "port": port}],
                     hos_balancer_stats=f"127.0.0.1:{stats}")
        config = fleet_mod.render_config(tmp_path, inventory, extra)
        if extra.get("hos_balancer_api_keys") is not None:
            Path(extra["hos_balancer_keys_map"]).write_text(fleet_mod.render_keys_map(tmp_path, extra))
        path = tmp_path / "haproxy.cfg"
        path.write_text(fleet_mod.foreground_config(config).replace(f"bind :{port}", f"bind 127.0.0.1:{port}"))
        log = (tmp_path / "haproxy.log").open("w")
        proc = subprocess.Popen([*fleet_mod.haproxy_command(where, tmp_path), "-db", "-f", str(path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                if fleet_mod.request("127.0.0.1", port, "GET", "/api/version", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"HAProxy ({where}) did not answer:\n" + (tmp_path / "haproxy.log").read_text()[-3000:],
                            pytrace=False)
            time.sleep(0.1)
        return pi, port

    yield start
    for thing in reversed(started):
        if isinstance(thing, PiStandIn):
            thing.close()
        else:
            thing.terminate()
            try:
                thing.wait(timeout=20)
            except subprocess.TimeoutExpired:
                thing.kill()
                thing.wait(timeout=20)


@pytest.mark.parametrize("where", haproxy_places())
def test_with_keys_the_balancer_answers_401_and_403_itself_and_shows_the_pis_its_own_key(
        local_balancer, client_keys, tmp_path, where):
    pi, port = local_balancer(where, keys_vars(tmp_path / "keys.map", client_keys.pi, client_keys.api_keys))
    fleet_key = [f"Bearer {client_keys.pi}"]

    def call(method, path, key=None, body=None, **kw):
        before = len(pi.seen)
        answer = fleet_mod.request("127.0.0.1", port, method, path, body=body, key=key, timeout=10, **kw)
        ours = [s for s in pi.seen[before:] if s[2]]  # the checks come without a header
        return answer, ours

    def refused(answer, ours, status, word):
        assert answer.status == status and not ours, (answer, ours)
        assert answer.json()["error"].startswith(f"{word}: "), answer
        assert answer.headers["content-type"] == "application/json" and "x-served-by" not in answer.headers
        if status == 401:
            assert answer.headers["www-authenticate"] == "Bearer", answer.headers

    chat = {"model": MODEL, "stream": False, "messages": [{"role": "user", "content": "Hello"}]}
    # /api/version (GET, HEAD) needs no key; anything else does
    answer, ours = call("GET", "/api/version")
    assert answer.status == 200 and ours == [("GET", "/api/version", fleet_key)], (answer, ours)
    assert call("HEAD", "/api/version")[0].status == 200
    refused(*call("POST", "/api/version"), 401, "unauthorized")
    refused(*call("POST", "/api/chat", body=chat), 401, "unauthorized")
    refused(*call("POST", "/api/chat", key=fleet_mod.new_api_key(), body=chat), 401, "unauthorized")
    refused(*call("POST", "/api/chat", body=chat, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}),
            401, "unauthorized")
    # the Pis' key is not a client's key
    refused(*call("POST", "/api/chat", key=client_keys.pi, body=chat), 401, "unauthorized")

    # a user key: the user routes reach the Pi with the balancer's key
    for method, path in (("POST", "/api/chat"), ("POST", "//api//chat/"), ("POST", "/api/generate"),
                         ("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/api/ps"), ("POST", "/api/embed"),
                         ("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/")):
        answer, ours = call(method, path, key=client_keys.user, body=chat if method == "POST" else None)
        # (Python's http.server makes a leading // one /)
        assert answer.status == 200 and ours == [(method, re.sub("^/+", "/", path), fleet_key)], (
            method, path, answer, ours)
        assert answer.headers["x-served-by"] == "fake-pi"
    answer, _ = call("POST", "/api/chat", key=client_keys.user, body=chat)
    assert answer.json()["message"]["content"] == ANSWER
    # ... and nothing else: admin routes and routes not named are refused
    for method, path in (("POST", "/api/pull"), ("DELETE", "/api/delete"), ("POST", "/api/create"),
                         ("POST", "/api/copy"), ("POST", "/api/push"), ("POST", "/api/blobs/sha256:00"),
                         ("GET", "/hailo/v1/list"), ("POST", "/API/chat")):
        refused(*call(method, path, key=client_keys.user, body={"model": MODEL}), 403, "forbidden")
    # an admin key (stored by its upper-case hash, lowered by the play) may do them
    for method, path in (("POST", "/api/pull"), ("DELETE", "/api/delete"), ("GET", "/hailo/v1/list"),
                         ("POST", "/api/chat")):
        answer, ours = call(method, path, key=client_keys.admin, body={"model": MODEL})
        assert answer.status == 200 and ours == [(method, path, fleet_key)], (method, path, answer, ours)

    # what the Pi ever saw: the balancer's key, or (HAProxy's checks) none
    assert all(s[2] in ([], fleet_key) for s in pi.seen), pi.seen
    deadline = time.monotonic() + 10
    while not pi.checks() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pi.checks() and all(s[:2] == ("GET", "/api/version") for s in pi.checks()), pi.seen


@pytest.mark.parametrize("where", haproxy_places())
def test_with_the_pis_key_alone_the_balancer_is_open_and_replaces_the_clients_key(
        local_balancer, client_keys, tmp_path, where):
    pi, port = local_balancer(where, keys_vars(tmp_path / "keys.map", client_keys.pi))
    for key in (None, client_keys.user, "not a key"):
        before = len(pi.seen)
        answer = fleet_mod.request("127.0.0.1", port, "POST", "/api/pull", body={"model": MODEL},
                                   headers={} if key is None else {"Authorization": f"Bearer {key}"}, timeout=10)
        assert answer.status == 200, answer
        assert [s for s in pi.seen[before:] if s[2]] == [("POST", "/api/pull", [f"Bearer {client_keys.pi}"])]


@pytest.mark.parametrize("where", haproxy_places())
def test_without_keys_the_balancer_passes_the_clients_header_on_as_before(
        local_balancer, client_keys, tmp_path, where):
    pi, port = local_balancer(where, {})
    for key in (None, client_keys.user):
        before = len(pi.seen)
        answer = fleet_mod.request("127.0.0.1", port, "POST", "/api/pull", body={"model": MODEL}, key=key,
                                   timeout=10)
        assert answer.status == 200, answer
        assert pi.seen[before:][-1] == ("POST", "/api/pull", [] if key is None else [f"Bearer {key}"]), pi.seen



# ------------------------------------------------------------ API keys, booted (last: access stays on)
PI_KEY_NAME = "balancer"  # playbook.yml's name of the balancer's key on the Pis
ACCESS_UNIT = "hailo-ollama-access.service"


@pytest.fixture(scope="module")
def keyed(fleet, ready, ansible_playbook, hos_deb, debs, client_keys):
    """The deployed fleet, then the example playbook again (twice) with API keys: on the
    Pis access on (the debconf answer access=true, in hos_debconf), a user key of their own
    (hos_api_keys) and the balancer's key by its hash (hos_balancer_pi_key: an admin key
    named "balancer"); on the balancer the clients' keys (hos_balancer_api_keys)."""
    direct = fleet_mod.new_api_key()
    values = {"hos_debconf": {"port": "11434", "access": "true"},
              "hos_api_keys": [{"name": "direct", "sha256": fleet_mod.key_hash(direct)}],
              "hos_balancer_pi_key": client_keys.pi,
              "hos_balancer_api_keys": client_keys.api_keys}
    extra = ["-e", f"hos_deb={hos_deb}", "-e", f"hailo_model_zoo_deb={debs.standin('5.1.1')}",
             "-e", "@" + str(fleet_mod.vars_file(fleet.workdir, values, "keys.json"))]
    inventory = fleet.inventory()
    first = fleet_mod.run_playbook(inventory, fleet_mod.PLAYBOOK, *extra)
    second = fleet_mod.run_playbook(inventory, fleet_mod.PLAYBOOK, *extra) if first.returncode == 0 else None
    return SimpleNamespace(first=first, second=second, direct=direct, **vars(client_keys))


@pytest.fixture(scope="module")
def keyed_ready(fleet, keyed):
    if keyed.first.returncode != 0:
        pytest.fail("the example playbook with keys failed:\n" + keyed.first.stdout[-6000:]
                    + keyed.first.stderr[-2000:], pytrace=False)
    for name in fleet.names:
        fleet_mod.wait_server_status(fleet.balancer, name, "UP", timeout=30)
    return keyed


def pi_keys(pi) -> "dict[str, tuple[str, str]]":
    """`hailo-ollama-service keys list` of PI: name -> (role, the start of its hash)."""
    out = {}
    for line in pi.exec(["hailo-ollama-service", "keys", "list"]).stdout.splitlines():
        parts = line.split()
        if parts:
            prefix = next((p.split(":", 1)[1] for p in parts if p.startswith("sha256:")), "")
            out[parts[0]] = (parts[1], prefix)
    return out


def test_keys_one_run_turns_access_on_on_the_pis_and_keys_on_the_balancer_a_second_changes_nothing(
        fleet, keyed):
    first, second = keyed.first, keyed.second
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    recap = fleet_mod.recaps(first)
    hosts = set(fleet.names) | {fleet.balancer.ip}
    assert set(recap) == hosts and all("failed=0" in line for line in recap.values()), recap
    assert all("changed=0" not in line for line in recap.values()), f"a host was left as it was: {recap}"
    assert second is not None and second.returncode == 0, second and second.stdout[-6000:]
    again = fleet_mod.recaps(second)
    assert set(again) == hosts and all("changed=0" in line and "failed=0" in line for line in again.values()), again

    fleet_hash = fleet_mod.key_hash(keyed.pi)
    for pi in fleet.pis:
        keys = pi_keys(pi)
        assert set(keys) == {PI_KEY_NAME, "direct"}, keys
        assert keys[PI_KEY_NAME][0] == "admin" and fleet_hash.startswith(keys[PI_KEY_NAME][1]), keys
        assert keys["direct"][0] == "user" and fleet_mod.key_hash(keyed.direct).startswith(keys["direct"][1])
        assert product.is_active(pi, ACCESS_UNIT) == "active"

    b = fleet.balancer
    for path in (fleet_mod.KEYS_MAP, "/etc/haproxy/haproxy.cfg"):
        assert b.exec(["stat", "-c", "%a %U %G", path]).stdout.strip() == "640 root haproxy", path
    keys_map = b.read_file(fleet_mod.KEYS_MAP)
    config = b.read_file("/etc/haproxy/haproxy.cfg")
    entries = sorted(line.split() for line in keys_map.splitlines() if line and not line.startswith("#"))
    assert entries == sorted([[fleet_mod.key_hash(keyed.user), "user"], [fleet_mod.key_hash(keyed.admin), "admin"]])
    assert config.count(f'set-header Authorization "Bearer {keyed.pi}"') == 2
    for key in (keyed.user, keyed.admin, keyed.direct):
        assert key not in config and key not in keys_map
    assert b.exec(["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg"], check=False).rc == 0


def test_keys_through_the_balancer_a_user_key_chats_no_key_gets_401_a_user_key_cannot_pull(fleet, keyed_ready):
    keyed, b = keyed_ready, fleet.balancer

    def call(method, path, key=None, body=None):
        return fleet_mod.request(b.ip, fleet_mod.BALANCER_PORT, method, path, body=body, key=key, timeout=60)

    def refused(answer, status, word):
        assert answer.status == status, answer
        assert answer.json()["error"].startswith(f"{word}: "), answer
        assert "x-served-by" not in answer.headers, f"a Pi answered, not the balancer: {answer}"
        if status == 401:
            assert answer.headers.get("www-authenticate") == "Bearer", answer.headers

    version = call("GET", "/api/version")
    assert version.status == 200 and version.headers.get("x-served-by") in fleet.names, version
    chat = {"model": MODEL, "stream": False, "messages": [{"role": "user", "content": "Hello"}]}
    refused(call("POST", "/api/chat", body=chat), 401, "unauthorized")
    refused(call("POST", "/api/chat", key=fleet_mod.new_api_key(), body=chat), 401, "unauthorized")
    # a Pi's own key (and the balancer's key for the Pis) is no key of the balancer's
    refused(call("POST", "/api/chat", key=keyed.direct, body=chat), 401, "unauthorized")
    refused(call("POST", "/api/chat", key=keyed.pi, body=chat), 401, "unauthorized")

    answer = fleet_mod.chat(b.ip, key=keyed.user)
    assert answer.ok and answer.served_by in fleet.names, describe([answer])
    refused(call("POST", "/api/pull", key=keyed.user, body={"model": MODEL, "stream": False}), 403, "forbidden")
    refused(call("DELETE", "/api/delete", key=keyed.user, body={"model": MODEL}), 403, "forbidden")
    # an admin key pulls (on one Pi, which takes the balancer's admin key)
    pulled = call("POST", "/api/pull", key=keyed.admin, body={"model": MODEL, "stream": False})
    assert pulled.status == 200 and pulled.headers.get("x-served-by") in fleet.names, pulled

    # the queue as before: one generation per Pi, the others wait in HAProxy
    chats = fleet_mod.concurrent_chats(b.ip, 6, timeout=120, key=keyed.user)
    assert all(c.ok for c in chats), describe(chats)
    assert set(served_by(chats)) == set(fleet.names), describe(chats)
    assert all(int(row["smax"]) == 1 for row in fleet_mod.haproxy_servers(b).values())


def test_keys_the_pis_take_the_balancers_key_never_the_clients(fleet, keyed_ready):
    keyed, b = keyed_ready, fleet.balancer
    pi1 = fleet.pis[0]
    for pi in fleet.pis:
        def status(key, path="/api/tags", pi=pi):
            return fleet_mod.request(pi.ip, 11434, "GET", path, key=key, timeout=30).status
        # a Pi knows its own keys and the balancer's, not the balancer's clients'
        assert [status(k) for k in (None, keyed.user, keyed.admin)] == [401, 401, 401], pi.name
        assert [status(k) for k in (keyed.pi, keyed.direct)] == [200, 200], pi.name
        assert status(None, "/api/version") == 200

    def tags_through_the_balancer(n):
        return [fleet_mod.request(b.ip, fleet_mod.BALANCER_PORT, "GET", "/api/tags", key=keyed.user, timeout=30)
                for _ in range(n)]

    # so what a Pi is given for a client is the balancer's key: without it, the
    # Pi refuses the client that the balancer let in
    fleet_hash = fleet_mod.key_hash(keyed.pi)
    pi1.exec(["hailo-ollama-service", "keys", "revoke", PI_KEY_NAME])
    try:
        answers = tags_through_the_balancer(3 * len(fleet.pis))
        from_pi1 = [a for a in answers if a.headers.get("x-served-by") == pi1.ip]
        others = [a for a in answers if a.headers.get("x-served-by") != pi1.ip]
        assert from_pi1 and all(a.status == 401 and a.json()["error"].startswith("unauthorized") for a in from_pi1), (
            answers)
        assert others and all(a.status == 200 for a in others), answers
        # its health checks need no key: it stays in
        assert fleet_mod.haproxy_servers(b)[pi1.ip]["status"] == "UP"
    finally:
        added = pi1.exec(["hailo-ollama-service", "keys", "add", PI_KEY_NAME, "--sha256", fleet_hash, "--admin"])
    assert added.stdout.strip() == f"added {PI_KEY_NAME}", added.output
    answers = tags_through_the_balancer(3 * len(fleet.pis))
    assert all(a.status == 200 for a in answers), answers
    assert {a.headers.get("x-served-by") for a in answers} == set(fleet.names), answers


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "system"]))
