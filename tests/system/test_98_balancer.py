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

Release independent: the balancer is a LAN host of the admin's choice, and
nothing of it differs between the Pis' releases (runs on trixie).
"""

import json
import subprocess
import sys
import time
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
    """Three Pis and the balancer host, booted and linked, nothing installed."""
    try:
        f = fleet_mod.boot_fleet(3, tmp_path_factory.mktemp("fleet"), name="bal")
    except (harness.HarnessError, fleet_mod.FleetError) as e:
        pytest.fail(f"cannot boot the fleet: {e}", pytrace=False)
    try:
        for pi in f.pis:
            fleet_mod.prepare_pi(pi, TOKEN_DELAY)
        yield f
    finally:
        f.destroy()


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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "system"]))
