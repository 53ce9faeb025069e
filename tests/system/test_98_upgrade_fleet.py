"""A rolling upgrade of the fleet (issue 21): examples/ansible/upgrade.yml, booted.

Three Pi containers (the stand-in upstream, a usable device node) and the
balancer container, as test_98_balancer. The example playbook deploys the
last release with a warm-up model kept loaded; then, while four clients
keep streaming chats through the balancer (three Pis, so every Pi is
nearly always generating), upgrade.yml puts this build on the Pis one at a
time, each drained through HAProxy's runtime API first: no request may
fail or be cut. A second run changes nothing. Then Hailo's package is
upgraded from an apt repository on the Pis while the second Pi's new server
cannot start: the play stops there, that Pi stays drained, the third is
not touched, and the clients still lose nothing.

Release independent (runs on trixie), as test_98 and test_99: the play and
the balancer are the same for every release of the Pis, and the upgrade of
the package itself on each release is test_70's.
"""

import json
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import fleet as fleet_mod
import harness
import product
from fleet import MODEL

pytestmark = [pytest.mark.system, pytest.mark.release_independent]

UPGRADE = fleet_mod.PLAYBOOK.parent / "upgrade.yml"
TOKEN_DELAY = 0.1  # 8 tokens: a chat takes 0.8 s
CLIENTS = 4
REPO = "/srv/hos-test-repo"


@pytest.fixture(scope="module")
def fleet(base_root, tmp_path_factory):
    """Three Pis and the balancer host, booted and linked, nothing installed."""
    try:
        with fleet_mod.running_fleet(3, tmp_path_factory.mktemp("fleet"), "roll", TOKEN_DELAY) as f:
            yield f
    except (harness.HarnessError, fleet_mod.FleetError) as e:
        pytest.fail(f"cannot boot the fleet: {e}", pytrace=False)


@pytest.fixture(scope="module")
def old_fleet(fleet, hos_last_release_deb, debs):
    """The last release on every Pi (the warm-up model kept loaded), the balancer in front, all UP."""
    answers = {"port": "11434", "warmup-model": MODEL, "keep-loaded": "true"}
    done = fleet_mod.run_playbook(fleet.inventory(), fleet_mod.PLAYBOOK, "-e", f"hos_deb={hos_last_release_deb}",
                                  "-e", f"hailo_model_zoo_deb={debs.standin('5.1.1')}",
                                  "-e", json.dumps({"hos_debconf": answers}))
    if done.returncode != 0:
        pytest.fail("the example playbook failed:\n" + done.stdout[-5000:] + done.stderr[-2000:], pytrace=False)
    for pi in fleet.pis:
        product.ensure_pulled(pi, MODEL)
    for name in fleet.names:
        fleet_mod.wait_server_status(fleet.balancer, name, "UP", timeout=30)
    return fleet


class Clients:
    """CLIENTS threads, each sending one streamed chat through the balancer after another until stopped."""

    def __init__(self, host: str, n: int = CLIENTS):
        self.host, self.stop_event, self.chats = host, threading.Event(), []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self.chats.append(fleet_mod.chat(self.host, timeout=300))

    def __enter__(self) -> "Clients":
        for t in self.threads:
            t.start()
        time.sleep(3)  # every Pi busy before the play starts
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=320)

    @property
    def lost(self) -> list:
        return [c for c in self.chats if not c.ok]

    def summary(self) -> str:
        longest = max((c.t_first for c in self.chats if c.t_first is not None), default=0.0)
        return (f"{len(self.chats)} chats sent, {len(self.lost)} lost, longest wait for a first token "
                f"{longest:.2f} s")


def describe(chats) -> str:
    return "\n".join(f"{c.status} {c.served_by} done={c.done} lines={c.lines} {c.error} {c.body[:200]!r}"
                     for c in chats)


def upgrade(fleet, *extra: str) -> SimpleNamespace:
    t0 = time.monotonic()
    done = fleet_mod.run_playbook(fleet.inventory(), UPGRADE, *extra)
    return SimpleNamespace(done=done, seconds=time.monotonic() - t0, recaps=fleet_mod.recaps(done),
                           output=done.stdout[-6000:] + done.stderr[-2000:])


def version(c, package: str = product.PACKAGE) -> str:
    return c.exec(["dpkg-query", "-W", "-f", "${Version}", package]).stdout.strip()


def admin_states(balancer, server: str) -> set[int]:
    """srv_admin_state of SERVER in every backend, from HAProxy's runtime API (show servers state)."""
    r = balancer.exec("echo 'show servers state' | socat -t 5 stdio /run/haproxy/admin.sock")
    return {int(f[6]) for f in (line.split() for line in r.stdout.splitlines()[1:])
            if len(f) > 6 and not f[0].startswith("#") and f[3] == server}


def test_the_fleet_upgrades_one_pi_at_a_time_without_losing_a_request_and_a_second_run_changes_nothing(
        old_fleet, hos_deb, capsys):
    f = old_fleet
    new = product.deb_field(hos_deb, "Version")
    assert all(version(pi) != new for pi in f.pis)
    with Clients(f.balancer.ip) as clients:
        run = upgrade(f, "-e", f"hos_deb={hos_deb}")
        time.sleep(2)  # the last Pi back in service takes requests again
    assert run.done.returncode == 0, run.output
    assert all(version(pi) == new for pi in f.pis)
    for name in f.names:
        assert "changed=0" not in run.recaps[name], run.recaps
        assert admin_states(f.balancer, name) == {0}, run.output  # back to ready
    # the Pis came back with the warm-up model loaded (warmup.keep_loaded)
    for pi in f.pis:
        status, ps = product.api(pi, "GET", "/api/ps")
        assert status == 200 and MODEL in [m.get("name") for m in ps.get("models", [])], (pi.name, ps)
    assert clients.lost == [], describe(clients.lost) + "\n" + clients.summary()
    # every Pi served some of them: the clients kept the whole fleet busy
    assert {c.served_by for c in clients.chats} >= set(f.names), clients.summary()
    with capsys.disabled():
        print(f"\nrolling upgrade of {len(f.pis)} Pis to {new}: {run.seconds:.1f} s; {clients.summary()}")

    again = upgrade(f, "-e", f"hos_deb={hos_deb}")
    assert again.done.returncode == 0, again.output
    assert all("changed=0" in again.recaps[host] for host in again.recaps), again.recaps
    assert all(admin_states(f.balancer, name) == {0} for name in f.names)


def apt_repository(fleet, deb: Path) -> None:
    """An apt repository of DEB on each Pi (its only apt source: the containers have no network)."""
    for pi in fleet.pis:
        pi.copy_in(str(deb), f"{REPO}/{deb.name}")
        pi.exec(f"cd {REPO} && dpkg-scanpackages . > Packages")
        pi.exec("mkdir -p /etc/apt/hos-test-sources-off && "
                "mv /etc/apt/sources.list.d/* /etc/apt/sources.list /etc/apt/hos-test-sources-off/ 2>/dev/null; "
                f"echo 'deb [trusted=yes] file:{REPO} ./' > /etc/apt/sources.list.d/hos-test.list")


def test_a_pi_whose_new_server_cannot_start_stops_the_play_there_drained_while_the_fleet_answers(
        old_fleet, debs, capsys):
    f = old_fleet
    first, broken, untouched = f.pis
    newer = debs.standin("5.1.2")
    apt_repository(f, newer)
    product.standin_mode(broken, "broken")  # read at its next start: it exits at once
    try:
        with Clients(f.balancer.ip) as clients:
            run = upgrade(f, "-e", "hos_upgrade_from_apt=true", "-e", "hos_upgrade_start_timeout=15")
        assert run.done.returncode != 0, run.output
        # the play says which Pi and why, and went no further
        said = run.done.stdout.replace('\\"', '"')  # the message, as Ansible prints it in JSON
        assert re.search(re.escape(broken.ip) + r': the upgrade stopped at "Wait until the settings are applied'
                         r' and the API answers": non-zero return code hailo-ollama-service: no answer from '
                         r'\S+ within 15 s\. It stays drained in the balancer; the Pis after it were not touched',
                         said), run.output
        assert version(first, product.UPSTREAM) == "5.1.2-1"
        assert version(broken, product.UPSTREAM) == "5.1.2-1"
        assert version(untouched, product.UPSTREAM) == "5.1.1-1"
        # the failed Pi stays drained in both backends (admin state: drain set through the
        # runtime API, 0x08, or inherited from the server it tracks, 0x10), the others are ready
        drained = admin_states(f.balancer, broken.ip)
        assert drained and all(state & 0x18 for state in drained), (drained, run.output)
        assert admin_states(f.balancer, first.ip) == {0} and admin_states(f.balancer, untouched.ip) == {0}
        assert clients.lost == [], describe(clients.lost) + "\n" + clients.summary()
        after = fleet_mod.concurrent_chats(f.balancer.ip, 4, timeout=120)
        assert all(c.ok for c in after) and broken.ip not in {c.served_by for c in after}, describe(after)
        with capsys.disabled():
            print(f"\nupgrade stopped at {broken.name} after {run.seconds:.1f} s; {clients.summary()}")
    finally:
        product.standin_mode(broken, None)
