"""Every command the Pi owner's README shows is run by a test, or listed with why not (issue 22).

The commands are the lines of README.md's fenced ```sh blocks, read at test
time: a line ending in a backslash is joined with the next one (the key
keeps the README's backslash-newline and indentation, byte for byte), blank
lines and lines starting with ``#`` are skipped, and a trailing comment
(`` # ...`` outside quotes) is cut off. COMMANDS maps each one to
Run (run here), Elsewhere (a named file runs it; checked to exist and to
hold the needle) or Cannot (the reason); a README command without an entry,
or an entry the README no longer shows, fails the first test.

The Run commands run with ``bash -c`` as their own text in WORKDIR of ONE
booted trixie container (what a new Pi has): as root when the text says
sudo, else as the owner ``pi`` (Raspberry Pi OS's first user, in adm for the
journal), so a command shown without sudo that needs root fails. One test per
README section in the README's order of use: prerequisites, a preseeded
first install, check, settings, models, clients, logs, troubleshooting,
upgrade, remove, purge. Each section needs the ones above it (``phase``) and
fails at once, naming them, when one of them failed. Scaffolding, which is
no README command and is marked so below: a ``sudo`` shim; /etc/hosts names
for dev-public.hailo.ai and pi5.local; the .debs under the names the
README's globs match; /dev/hailo0 (``c 1 3``, what the stand-in opens) in
place of the HAT and its driver, made before anything is installed (the
server opens it per load, so no restart is needed); the stand-in package's
HTTPS library on port 443 in place of Hailo's; the states the
troubleshooting and upgrade sections start from; newer builds of this tree
for the upgrades.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import harness
import product

pytestmark = [pytest.mark.system, pytest.mark.release_independent]

README = product.REPO / "README.md"
OWNER, WORKDIR = "pi", "/home/pi"  # the Pi's first user, who downloaded the .debs to their home
MODEL = "qwen2:1.5b"


@dataclass(frozen=True)
class Run:
    """Run here, by a section test below; ``stdin``: what the owner types at apt's prompt."""

    stdin: str = ""


@dataclass(frozen=True)
class Elsewhere:
    """Run by the file PATH (relative to the repository), which holds NEEDLE.
    ``each_package``: every package the command installs is in PATH's
    ``apt-get install`` command."""

    path: str
    needle: str
    each_package: bool = False


@dataclass(frozen=True)
class Cannot:
    """Not run by any test, for REASON."""

    reason: str


DEMO_TEST = "test_make_demo_leaves_the_api_answering_and_make_demo_stop_leaves_nothing_running"
ZOO = "sudo apt install ./hailo_gen_ai_model_zoo_*_arm64.deb"
INSTALL = "sudo apt install ./hailo-ollama-service_*_all.deb"  # under Install and under Upgrade
VERIFY = "hailo-ollama-service verify"
VERSION = "curl http://localhost:11434/api/version"
WAIT_READY = "hailo-ollama-service wait-ready --timeout 60"
DOCTOR = "sudo hailo-ollama-service doctor"  # under Check and under Troubleshooting
CHECK = "sudo hailo-ollama-service check"
CONFIG = "hailo-ollama-service config"
PRESEED = "echo 'hailo-ollama-service hailo-ollama-service/port string 11500' | sudo debconf-set-selections"
PRESEEDED_INSTALL = "sudo DEBIAN_FRONTEND=noninteractive apt install ./hailo-ollama-service_*_all.deb"
LIST = "curl http://localhost:11434/hailo/v1/list"
PULL = f"hailo-ollama-service pull {MODEL}"
TAGS = "curl http://localhost:11434/api/tags"
BENCH = f"hailo-ollama-service bench {MODEL}"
CHAT = ("curl http://pi5.local:11434/api/chat -H 'Content-Type: application/json' \\\n"
        """  -d '{"model": "qwen2:1.5b", "messages": [{"role": "user", "content": "Hello"}]}'""")
JOURNAL = "journalctl -u hailo-ollama.service"
JOURNAL_CONFIG = "journalctl -u 'hailo-ollama-config*'"
UNATTENDED = ("sudo apt-get -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
              "install ./hailo-ollama-service_*_all.deb")
REMOVE = "sudo apt remove hailo-ollama-service"
PURGE = "sudo apt purge hailo-ollama-service"
RESTART = "sudo systemctl restart hailo-ollama.service"
LAST_WORDS = "journalctl -u hailo-ollama.service -n 100 --no-pager"
OLLAMA_CLI = ("the ollama CLI is a Go binary in neither Debian's archive nor PyPI, run from another machine; "
              "the `ollama` Python client is run against the same API by test_45_access.py and test_98_balancer.py")

COMMANDS: dict[str, Run | Elsewhere | Cannot] = {
    # Try it without a Pi (the host's commands)
    "sudo apt install make dpkg-dev systemd-container mmdebstrap python3-yaml python3-requests":
        Elsewhere(".ci/run", "apt-get install", each_package=True),
    "sudo make demo": Elsewhere("tests/system/test_97_demo.py", DEMO_TEST),
    "curl http://127.0.0.1:11434/api/version":
        Elsewhere("tests/system/test_97_demo.py", '"http://127.0.0.1:11434/api/version"'),
    "sudo make demo-stop": Elsewhere("tests/system/test_97_demo.py", DEMO_TEST),
    "sudo make check": Elsewhere(".ci/run", "\nmake check\n"),
    # Prerequisites
    "sudo apt install dkms hailo-h10-all && sudo reboot": Cannot(
        "Hailo's driver (a dkms module) and HailoRT come from the Raspberry Pi archive for arm64 and need "
        "the HAT on a Pi 5; a container runs the host's kernel. /dev/hailo0 (c 1 3) stands in for them here"),
    "hailortcli fw-control identify": Cannot(
        "hailortcli is HailoRT's (hailo-h10-all) and reads the firmware of a real Hailo-10H through its driver"),
    ZOO: Run(),
    INSTALL: Run(),
    VERIFY: Run(), VERSION: Run(), WAIT_READY: Run(), DOCTOR: Run(),
    CHECK: Run(), CONFIG: Run(), PRESEED: Run(), PRESEEDED_INSTALL: Run(),
    LIST: Run(), PULL: Run(), TAGS: Run(), BENCH: Run(),
    CHAT: Run(),
    "OLLAMA_HOST=http://pi5.local:11434 ollama list": Cannot(OLLAMA_CLI),
    "OLLAMA_HOST=http://pi5.local:11434 ollama run qwen2:1.5b": Cannot(OLLAMA_CLI),
    JOURNAL: Run(), JOURNAL_CONFIG: Run(),
    UNATTENDED: Run(),
    REMOVE: Run(stdin="y\n"), PURGE: Run(stdin="y\n"),
    RESTART: Run(), LAST_WORDS: Run(),
}


def _cut_comment(text: str) -> str:
    """TEXT without a trailing comment: from the first " #" outside quotes (where the text before it splits)."""
    for m in re.finditer(r"\s#", text):
        try:
            shlex.split(text[:m.start()])
        except ValueError:  # inside quotes
            continue
        return text[:m.start()].rstrip()
    return text.rstrip()


def readme_commands(text: str) -> list[str]:
    """The commands of TEXT's ```sh blocks, in order (see the module docstring)."""
    out: list[str] = []
    block, pending = False, ""
    for line in text.splitlines():
        if not block:
            block = line.strip() in ("```sh", "```bash", "```shell")
            continue
        if line.strip() == "```":
            block = False
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line
        if line.endswith("\\"):
            pending += "\n"
            continue
        out.append(_cut_comment(pending))
        pending = ""
    return out


# ------------------------------------------------------------------ phases
ORDER: list[str] = []  # the section tests, in file order
PASSED: set[str] = set()
RAN: set[str] = set()


def phase(func):
    """A section test: it fails at once, naming them, if a section above it did not pass."""
    ORDER.append(func.__name__)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        missing = [name for name in ORDER[:ORDER.index(func.__name__)] if name not in PASSED]
        if missing:
            pytest.fail("this section needs the ones above it; did not pass: " + ", ".join(missing), pytrace=False)
        func(*args, **kwargs)
        PASSED.add(func.__name__)
    return wrapper


def run(c: harness.Container, command: str, rc: int | None = 0, timeout: float = 600) -> harness.Result:
    """Run the README's COMMAND (a Run entry) verbatim in WORKDIR: as root when
    its text says sudo, else as the owner; assert its exit status RC (None: later)."""
    entry = COMMANDS[command]
    assert isinstance(entry, Run), f"{command!r} is not a Run entry of COMMANDS"
    RAN.add(command)
    argv = ["env", "-C", WORKDIR, "bash", "-c", command]
    owner = "sudo" not in shlex.split(command)
    if owner:
        argv = ["setpriv", f"--reuid={OWNER}", f"--regid={OWNER}", "--init-groups", *argv]
    r = c.exec(argv, input=entry.stdin or None, check=False, timeout=timeout,
               env={"HOME": WORKDIR, "USER": OWNER, "LOGNAME": OWNER} if owner else None)
    assert rc is None or r.rc == rc, f"{command}\nexited {r.rc}, not {rc}:\n{r.output[-4000:]}"
    return r


def statuses(doctor_output: str) -> dict[str, str]:
    """check -> OK/WARN/FAIL/SKIP from doctor's (or verify's) lines."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^\[(OK|WARN|FAIL|SKIP) *\] (\S+)", doctor_output, re.M)}


def doctor(c: harness.Container, fails: set[str]) -> dict[str, str]:
    """The README's doctor: exactly the checks FAILS fail, its exit status is
    the documented one (1 exactly when a check fails) and the api check is OK."""
    r = run(c, DOCTOR, rc=None, timeout=120)
    found = statuses(r.stdout)
    assert {name for name, status in found.items() if status == "FAIL"} == fails, r.output
    assert r.rc == (1 if fails else 0) and found.get("api") == "OK", r.output
    return found


# ------------------------------------------------------------- scaffolding
@pytest.fixture(scope="module")
def pi(base_root, hos_deb, debs):
    """One booted trixie container set up as a Pi owner's (scaffolding only,
    nothing of ours or Hailo's installed)."""
    c = harness.Container("readme", root=base_root)
    try:
        c.boot()
        # The base root has no sudo, and run() starts a command that says sudo
        # as root: a shim lets its text run verbatim (env takes "VAR=value cmd").
        c.write_file("/usr/local/bin/sudo", '#!/bin/sh\nexec env "$@"\n', mode=0o755)
        # The owner, in the groups of Raspberry Pi OS's first user that exist
        # here (adm reads the journal).
        c.exec(["useradd", "--create-home", "--groups", "adm,sudo,video,plugdev,users", OWNER])
        # No DNS in the container: Hailo's library is the stand-in's on this
        # machine (started after Hailo's package, which ships it), and
        # pi5.local is this Pi.
        c.exec(["sh", "-c", "printf '127.0.0.1 dev-public.hailo.ai\\n127.0.0.1 pi5.local\\n' >> /etc/hosts"])
        # The downloads, under names the README's globs match: the stand-in
        # is Architecture: all (apt reads the architecture from the package).
        c.copy_in(debs.standin("5.1.1"), f"{WORKDIR}/hailo_gen_ai_model_zoo_5.1.1_arm64.deb")
        c.copy_in(hos_deb, f"{WORKDIR}/")
        c.exec(["chown", "-R", f"{OWNER}:{OWNER}", WORKDIR])
        # The HAT and its driver (the Cannot entries): the stand-in's device node.
        c.add_device("/dev/hailo0")
        yield c
    finally:
        c.destroy()


def swap_deb(c: harness.Container, deb: Path) -> None:
    """Make DEB the only hailo-ollama-service_*_all.deb in WORKDIR."""
    c.exec(["sh", "-c", f"rm -f {WORKDIR}/hailo-ollama-service_*_all.deb"])
    c.copy_in(deb, f"{WORKDIR}/")


@pytest.fixture(scope="module")
def newer_debs(hos_deb, tmp_path_factory) -> tuple[Path, Path]:
    """Two newer builds of this tree for the upgrades: VERSION+readme1 (the
    same conffile) and VERSION+readme2 whose shipped conffile has one more
    line (repacked with dpkg-deb), so that an edited conffile meets a
    changed one, the case in which dpkg asks."""
    out = tmp_path_factory.mktemp("readme-upgrades")
    built = []
    for n in (1, 2):
        version = f"{product.deb_field(hos_deb, 'Version')}+readme{n}"
        built.append(product.Debs.build([str(product.REPO / "tools/build-deb"), "--version", version,
                                          "--outdir", str(out / str(n))], out / str(n),
                                         f"{product.PACKAGE}_{version}_all.deb"))
    tree = out / "tree"
    subprocess.run(["dpkg-deb", "-R", str(built[1]), str(tree)], check=True)
    with open(tree / product.CONFFILE.lstrip("/"), "a") as conffile:
        conffile.write("# (a line the next release adds)\n")
    subprocess.run(["dpkg-deb", "-b", str(tree), str(built[1])], check=True, capture_output=True)
    return built[0], built[1]


# ------------------------------------------------------------------ tables
def test_every_command_of_the_readme_is_run_here_elsewhere_or_listed_with_why_not():
    shown = set(readme_commands(README.read_text()))
    assert shown, f"no commands found in the ```sh blocks of {README}"
    new = sorted(shown - set(COMMANDS))
    stale = sorted(set(COMMANDS) - shown)
    assert not new and not stale, ("README commands without an entry in COMMANDS: " + json.dumps(new, indent=1)
                                   + "\nentries of COMMANDS the README no longer shows: " + json.dumps(stale, indent=1))


def test_the_files_that_run_the_other_commands_still_do_and_the_rest_say_why_not():
    for command, entry in COMMANDS.items():
        if isinstance(entry, Cannot):
            assert len(entry.reason) > 20, command
        if not isinstance(entry, Elsewhere):
            continue
        path = product.REPO / entry.path
        assert path.is_file(), f"{command}: {entry.path} is missing"
        text = path.read_text()
        assert entry.needle in text, f"{command}: {entry.path} no longer holds {entry.needle!r}"
        if entry.each_package:
            joined = text.replace("\\\n", " ")
            line = next(l for l in joined.splitlines() if entry.needle in l)
            words = shlex.split(command)
            packages = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
            missing = [p for p in packages if p not in line.split()]
            assert not missing, f"{command}: {entry.path} does not install {missing}"


# ---------------------------------------------------------------- sections
@phase
def test_prerequisites_hailos_package_installs_from_the_download(pi):
    run(pi, ZOO)
    assert product.dpkg_status(pi, product.UPSTREAM) == "install ok installed 5.1.1-1"
    assert pi.exists("/usr/bin/hailo-ollama")
    # scaffolding: Hailo's model library, on 443 of dev-public.hailo.ai (/etc/hosts)
    product.start_standin_library(pi, 443, unit="readme-library")


@phase
def test_install_preseeded_and_unattended_serves_on_the_preseeded_port_then_install_says_newest(pi):
    # The preseed pair of "Change settings" only means something on a first
    # install: it is this Pi's first install.
    run(pi, PRESEED)
    r = run(pi, PRESEEDED_INSTALL)
    assert "hailo-ollama is running: http://127.0.0.1:11500" in r.stdout, r.output[-3000:]
    assert product.answers(pi, 11500) and not product.answers(pi, 11434)  # answering when apt returns
    # scaffolding: back to 11434, the port every later command uses, with the
    # README's `sudo dpkg-reconfigure hailo-ollama-service` run non-interactively
    pi.exec(["debconf-set-selections"], input=f"{product.PACKAGE} {product.PACKAGE}/port string 11434\n")
    pi.exec(["dpkg-reconfigure", product.PACKAGE], env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=180)
    assert product.answers(pi, 11434) and not product.answers(pi, 11500)  # moved before it returned
    r = run(pi, INSTALL)
    assert "hailo-ollama-service is already the newest version" in r.stdout, r.output[-3000:]
    assert product.is_active(pi) == "active" and product.is_enabled(pi) == "enabled"


@phase
def test_check_it_verify_version_wait_ready_and_doctor_say_healthy(pi):
    found = statuses(run(pi, VERIFY).stdout)  # the owner cannot see who holds the port: WARN
    assert found["unit"] == found["api"] == found["models"] == "OK" and "FAIL" not in found.values(), found
    assert json.loads(run(pi, VERSION).stdout) == {"version": "0.5.1"}
    assert "http://127.0.0.1:11434 answers" in run(pi, WAIT_READY).stdout
    checks = doctor(pi, fails=set())
    assert checks["device"] == checks["library"] == checks["unit"] == "OK", checks


@phase
def test_change_settings_check_names_a_refused_edit_and_config_shows_every_setting_with_its_source(pi):
    assert run(pi, CHECK).stdout.strip() == "ok"
    # scaffolding: an invalid edit, as an owner might save it (and put back)
    pi.exec(["cp", product.CONFFILE, "/root/hailo-ollama.yaml.good"])
    pi.exec(["sh", "-c", f"printf '\\nserver:\\n  port: 70000\\n' >> {product.CONFFILE}"])
    r = run(pi, CHECK, rc=1)
    assert re.fullmatch(r"hailo-ollama-service: error: /etc/hailo/hailo-ollama.yaml:\d+: server\.port: .*70000\n",
                        r.stderr), r.output
    assert product.wait_for(lambda: "not 70000; keeping the last good" in product.journal_text(pi), 30)
    assert product.answers(pi, 11434)  # the last good configuration keeps serving
    pi.exec(["cp", "/root/hailo-ollama.yaml.good", product.CONFFILE])
    product.settle(pi)
    assert run(pi, CHECK).stdout.strip() == "ok"
    rows = {line.split()[0]: line.split()[1:] for line in run(pi, CONFIG).stdout.splitlines() if line.strip()}
    table = set(re.findall(r"^\| `([a-z_.]+)` \|", README.read_text(), re.M))
    assert table and set(rows) == table, sorted(set(rows) ^ table)
    assert rows["server.port"] == ["11434", product.DEBCONF_LAYER] and rows["main_poll_time_ms"] == ["200", "default"]


@phase
def test_models_list_pull_tags_and_bench(pi):
    assert sorted(json.loads(run(pi, LIST).stdout)["models"]) == sorted(product.shipped_models(pi))
    assert MODEL not in product.tag_names(pi)
    lines = run(pi, PULL).stdout.splitlines()
    assert lines[0] == f"downloading {MODEL} from library dev-public.hailo.ai:443", lines
    assert lines[-1] == "success" and any("%" in line for line in lines), lines
    assert MODEL in {m["name"] for m in json.loads(run(pi, TAGS).stdout)["models"]}
    out = run(pi, BENCH).stdout
    assert re.search(rf"^model: +{re.escape(MODEL)}$", out, re.M), out
    speed = re.search(r"^tokens/s, median: +([0-9.]+)", out, re.M)
    assert speed and float(speed.group(1)) > 0, out


@phase
def test_clients_chat_with_curl_by_the_pis_name_streams_an_answer(pi):
    events = [json.loads(line) for line in run(pi, CHAT).stdout.splitlines() if line.strip()]
    assert events and events[-1]["done"] is True, events
    assert all(e["model"] == MODEL for e in events)
    assert "".join(e["message"]["content"] for e in events).strip(), events


@phase
def test_logs_show_the_server_and_the_renders_with_the_refused_edit(pi):
    assert "Server running on port 11434" in run(pi, JOURNAL).stdout
    out = run(pi, JOURNAL_CONFIG).stdout
    assert "changed: /etc/xdg/hailo-ollama/hailo-ollama.json" in out, out[-3000:]
    assert re.search(r"error: /etc/hailo/hailo-ollama.yaml:\d+: server\.port: .* keeping the last good", out), out


@phase
def test_troubleshooting_doctor_names_no_models_a_restart_mirrors_them_and_the_journal_shows_it(pi):
    # scaffolding: the server started while Hailo's manifests were away
    pi.exec(["mv", product.UPSTREAM_MANIFESTS, "/root/manifests.away"])
    pi.systemctl("restart", product.UNIT, check=True)
    pi.exec(["mv", "/root/manifests.away", product.UPSTREAM_MANIFESTS])
    assert product.wait_answering(pi, timeout=30) and product.listed_models(pi) == set()
    doctor(pi, fails={"models"})
    before = product.main_pid(pi)
    run(pi, RESTART)
    after = product.main_pid(pi)
    assert product.wait_answering(pi, timeout=30) and after not in (0, before)
    assert product.listed_models(pi) == product.shipped_models(pi)
    doctor(pi, fails=set())
    out = run(pi, LAST_WORDS).stdout
    assert 0 < len(out.splitlines()) <= 100 and f"hailo-ollama[{after}]: " in out, out[-3000:]


@phase
def test_upgrade_keeps_settings_and_models_and_the_unattended_form_keeps_an_edited_conffile(pi, newer_debs):
    plain, unattended = newer_debs
    swap_deb(pi, plain)
    before = product.main_pid(pi)
    r = run(pi, INSTALL)
    assert product.dpkg_status(pi) == f"install ok installed {product.deb_field(plain, 'Version')}", r.output
    assert "hailo-ollama is running: http://127.0.0.1:11434" in r.stdout, r.output[-3000:]
    assert product.main_pid(pi) not in (0, before) and MODEL in product.tag_names(pi)
    assert product.debconf_value(pi, "port") == "11434"
    # scaffolding: the owner pins a setting in the conffile, then a release
    # whose shipped conffile changed arrives
    pi.exec(["sed", "-i", "s/^#main_poll_time_ms: 200$/main_poll_time_ms: 250/", product.CONFFILE])
    edited = pi.read_file(product.CONFFILE)
    assert "\nmain_poll_time_ms: 250\n" in edited
    assert product.wait_for(lambda: product.rendered_json(pi)["main_poll_time_ms"] == 250, 30)
    swap_deb(pi, unattended)
    r = run(pi, UNATTENDED)
    assert product.dpkg_status(pi) == f"install ok installed {product.deb_field(unattended, 'Version')}", r.output
    assert "hailo-ollama is running: http://127.0.0.1:11434" in r.stdout, r.output[-3000:]
    assert pi.read_file(product.CONFFILE) == edited
    assert pi.read_file(product.CONFFILE + ".dpkg-dist").encode() == product.deb_file(unattended, product.CONFFILE)
    assert product.rendered_json(pi)["main_poll_time_ms"] == 250
    assert product.wait_answering(pi, timeout=30) and MODEL in product.tag_names(pi)


@phase
def test_remove_stops_and_disables_the_server_and_keeps_the_settings_and_the_models(pi):
    run(pi, REMOVE)
    assert product.dpkg_status(pi).startswith("deinstall ok config-files")
    assert product.is_active(pi) != "active" and not product.answers(pi, 11434)
    assert not pi.exists("/etc/systemd/system/multi-user.target.wants/hailo-ollama.service")
    assert "\nmain_poll_time_ms: 250\n" in pi.read_file(product.CONFFILE) and pi.exists(product.DEBCONF_LAYER)
    assert pi.exec(["sh", "-c", f"ls {product.BLOB}/sha256_*"], check=False).rc == 0


@phase
def test_purge_removes_models_settings_and_the_user_and_gives_hailo_its_json_back(pi, debs):
    run(pi, PURGE)
    assert product.dpkg_status(pi) == ""
    assert pi.exec(["getent", "passwd", product.USER], check=False).rc == 2
    assert not pi.exists(product.STATE) and not pi.exists("/etc/hailo")
    assert pi.read_file(product.JSON).encode() == product.deb_file(debs.standin("5.1.1"), product.JSON)
    assert pi.exec(["getent", "group", "hailo"], check=False).rc == 0  # the shared group stays


@phase
def test_every_command_marked_run_was_run_by_a_section():
    assert {c for c, entry in COMMANDS.items() if isinstance(entry, Run)} == RAN
