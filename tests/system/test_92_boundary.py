"""Issue 9: the privilege boundary. Nothing the service user writes can steer root.

Someone who took over the network-facing server acts as `hailo-ollama` and
can write everything in its tree (/var/lib/hailo-ollama). Here, acting only
as that user (setpriv), one case at a time, we plant symlinks at every
level, FIFOs, huge sparse files and bookkeeping that points outside the
tree; then we drive every entry point that runs the package's code as root
(service start/restart, a conffile edit through the path unit,
dpkg-reconfigure, the dpkg trigger of an upstream upgrade, doctor, apt
remove, apt purge, reinstalls), each bounded in time, and compare snapshots
of /etc, /usr, /root and /var/lib (all but the service user's tree) taken
before and after each one: nothing may be created, deleted, modified,
chowned or chmodded there but what that entry point legitimately changes.
Root-owned canaries lie where the planted links point; they must never
change. Once the planted thing is gone, a restart serves every model again.

One container for every case (a module fixture). Each case ends with a
purge and a reinstall, which is also the reset for the next one.
"""

from __future__ import annotations

import json
import re
import time

import pytest

import harness
import product

pytestmark = pytest.mark.system

TREE = product.STATE
DROPIN_DIR = product.DROPIN.rsplit("/", 1)[0]
CANARY_DIRS = ("/etc/hos-canary", "/usr/local/share/hos-canary", "/root/hos-canary", "/var/lib/hos-canary")
# What each canary directory holds (all root-owned): names a planted link
# could make root write, read or remove.
CANARY_FILES = ("file", "manifest.json", "mirror-state.json", "render-state.json")

# Every root entry point runs with its address space bounded (ulimit -v for
# the commands run here, LimitAS= for the units): code that reads a planted
# 8 GiB sparse file whole then fails with MemoryError (a traceback, a
# failure) instead of taking the test machine's memory.
MEMORY_BOUND = "3G"
MEMORY_BOUND_KB = 3 * 1024 * 1024
MEMORY_DROPINS = ("/etc/systemd/system/hailo-ollama.service.d/90-hos-test-memory.conf",
                  "/etc/systemd/system/hailo-ollama-config.service.d/90-hos-test-memory.conf",
                  "/etc/systemd/system/hailo-ollama-config-recheck.service.d/90-hos-test-memory.conf")

# Bounds, in seconds. A start waits at most TimeoutStartSec=90 in systemd:
# a step that hangs on a FIFO (root's or the service user's) runs past these.
SYSTEMCTL_BOUND = 60
EDIT_BOUND = 30
RECONFIGURE_BOUND = 120
DPKG_BOUND = 180
DOCTOR_BOUND = 30

# ------------------------------------------------- what may legitimately change
# Root's own outputs: every start of the service renders them, also the
# restarts systemd makes by itself while a planted thing breaks the server.
RENDERED = (product.JSON, product.DROPIN, DROPIN_DIR, product.BOOK_DIR, product.BOOK_DIR + "/**")
DPKG_STATE = ("/var/lib/dpkg/**", "/var/lib/apt/**")
UCF_STATE = ("/var/lib/ucf/**",)
UNIT_LINKS = ("/var/lib/systemd/deb-systemd-helper-enabled/**", "/var/lib/systemd/deb-systemd-user-helper-enabled/**",
              "/etc/systemd/system/*.wants/hailo-ollama*")
OUR_PYCACHE = ("/usr/lib/python3/dist-packages/hailo_ollama_service/**",)
UPSTREAM_JSON = (product.JSON, product.JSON_DISTRIB, "/etc/xdg/hailo-ollama")
DEBCONF_LAYER = (product.LAYER_DIR, product.DEBCONF_LAYER)
USER_DATABASES = tuple(f"/etc/{name}{suffix}" for name in ("passwd", "group", "shadow", "gshadow")
                       for suffix in ("", "-"))


def allowed_for_package_runs(c, purge: bool) -> tuple[str, ...]:
    """What apt remove/purge and a reinstall of our package may change:
    its own files, dpkg's, apt's and ucf's records, the unit links, the
    diversion of upstream's JSON, the debconf layer; a purge also the
    settings in /etc/hailo and the user databases."""
    allowed = (*RENDERED, *DPKG_STATE, *UCF_STATE, *UNIT_LINKS, *OUR_PYCACHE, *UPSTREAM_JSON,
               *DEBCONF_LAYER, *sorted(c.boundary["our_files"]))
    if purge:
        allowed += ("/etc/hailo", "/etc/hailo/**", *USER_DATABASES)
    return allowed


# ----------------------------------------------------------------- cases
class Plant:
    """One thing the service user puts at PATH (relative to its tree).

    PACKAGE_RUNS: also drive apt remove and a reinstall while it is there
    (a subset of the cases: the reinstall runs the same postinst code as
    dpkg-reconfigure, which every case drives, and with a broken tree its
    bounded wait for the API costs 30 s)."""

    def __init__(self, kind: str, path: str, target: str = "", package_runs: bool = False):
        self.kind, self.path, self.target, self.package_runs = kind, path, target, package_runs

    def __repr__(self):
        return f"{self.kind} at {self.path}" + (f" -> {self.target}" if self.target else "")

    def plant(self, c) -> None:
        """Plant it, acting only as the service user. It owns the tree, so it
        may remove whatever is in the way first."""
        p = self.path
        parent = f'mkdir -p "$(dirname {p})" && '
        if self.kind == "symlink":
            product.as_service_user(c, f"{parent}rm -rf {p} && ln -s {self.target} {p}")
        elif self.kind == "fifo":
            product.as_service_user(c, f"{parent}rm -rf {p} && mkfifo {p}")
        elif self.kind == "sparse":
            product.as_service_user(c, f"{parent}rm -rf {p} && truncate -s 8G {p}")
        elif self.kind == "record":
            doc = poisoned_record(c, p)
            product.as_service_user(c, f"cat > {p}.new && mv -f {p}.new {p}", input=json.dumps(doc, indent=1))
        else:
            raise ValueError(self.kind)
        kind = c.exec(["stat", "-c", "%F %U", f"{TREE}/{p}"]).stdout.strip()
        assert kind.endswith(f" {product.USER}"), f"planting {self} failed: {kind}"

    def present(self, c) -> bool:
        """Is it still there as planted? (The service user's own sync step may
        have replaced it: it owns the tree.)"""
        p = f"{TREE}/{self.path}"
        test = {"symlink": f'[ -L {p} ] && [ "$(readlink {p})" = "{self.target}" ]',
                "fifo": f"[ -p {p} ]",
                "sparse": f'[ -f {p} ] && [ ! -L {p} ] && [ "$(stat -c %s {p})" -ge 8589934592 ]',
                "record": f"[ -f {p} ] && [ ! -L {p} ] && grep -q hos-canary {p}"}[self.kind]
        return c.exec(["sh", "-c", test], check=False).rc == 0

    def remove(self, c) -> None:
        """Remove what was planted (as the service user), if it is still there."""
        product.as_service_user(c, f"rm -f {self.path} {self.path}.new", check=False)


def poisoned_record(c, name: str) -> dict:
    """The mirror's record NAME (mirror-state.json, or 1.0.0's
    render-state.json) as the service user would rewrite it: the entries it
    holds, plus relative paths that walk out of the tree ('../' enough
    times) and absolute paths, each to a canary file with its true sha256 (a
    record that says "I copied this file, unchanged" asks for its removal
    once upstream no longer ships it); the legacy file also gets another
    port as the last good settings."""
    current = c.exec(["sh", "-c", f"test -f {TREE}/{name} && head -c 1000000 {TREE}/{name}"],
                     check=False).stdout
    try:
        doc = json.loads(current) if current.strip() else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    mirrored = doc.get("mirrored") if isinstance(doc.get("mirrored"), dict) else {}
    for directory in CANARY_DIRS:
        for leaf in ("file", "manifest.json"):
            path = f"{directory}/{leaf}"
            digest = c.boundary["canary_digests"][path]
            mirrored["../" * 8 + path.lstrip("/")] = digest
            mirrored["qwen2/1.5b/" + "../" * 8 + path.lstrip("/")] = digest
            mirrored[path] = digest
    doc["mirrored"] = mirrored
    if name == "render-state.json":
        last = doc.get("last_good") if isinstance(doc.get("last_good"), dict) else {}
        last.update({"server.port": 11999, "server.host": "0.0.0.0"})
        doc["last_good"] = last
    return doc


MANIFEST = "models/manifests/qwen2/1.5b/manifest.json"
SYMLINKS = [  # (where, to what, with apt remove + reinstall)
    ("models", "/etc/hos-canary", False),
    ("models/manifests", "/usr/local/share/hos-canary", False),
    ("models/manifests/qwen2", "/var/lib/hos-canary", True),
    ("models/manifests/qwen2/1.5b", "/root/hos-canary", False),
    (MANIFEST, "/etc/hos-canary/manifest.json", False),
    ("models/blob", "/var/lib/hos-canary", False),
    ("mirror-state.json", "/etc/hos-canary/mirror-state.json", False),
    ("render-state.json", "/usr/local/share/hos-canary/render-state.json", True),
]
SPECIAL_FILES = [(MANIFEST, True), ("mirror-state.json", False)]  # FIFO, sparse file
RECORDS = [("mirror-state.json", True), ("render-state.json", True)]


# --------------------------------------------------------------- fixture
def make_canaries(c) -> None:
    """Root-owned directories, files and an empty directory where the planted
    links point (always the same content: the digests stay valid)."""
    for directory in CANARY_DIRS:
        c.exec(["mkdir", "-p", f"{directory}/dir"])
        for leaf in CANARY_FILES:
            c.write_file(f"{directory}/{leaf}", f'{{"canary": "{directory}/{leaf}"}}\n', mode=0o644)
        c.exec(["chown", "-R", "root:root", directory])
        c.exec(["chmod", "0755", directory, f"{directory}/dir"])


@pytest.fixture(scope="module")
def boundary(base_root, debs, hos_deb, standin_debs):
    """Its own container: stand-in 5.1.1 and the package installed, answering,
    with the canaries and the memory bound in place."""
    c = harness.Container("boundary", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs, "5.1.1")
        for path in MEMORY_DROPINS:
            c.write_file(path, f"# hos system test: bounded memory (test_92)\n[Service]\nLimitAS={MEMORY_BOUND}\n")
        c.systemctl("daemon-reload", check=True)
        r = product.apt_install(c, hos_deb)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        make_canaries(c)
        digests = {p: e[4] for p, e in canary_state(product.fs_snapshot(c)).items() if e[0] == "file"}
        c.boundary = {"debs": debs, "hos_deb": hos_deb, "our_files": product.package_files(c),
                      "canary_digests": digests, "broken": None, "times": {}}
        yield c
    finally:
        c.destroy()


# ------------------------------------------------------------- the attack
def bounded(c, cmd, timeout: float, env=None) -> harness.Result:
    """CMD inside the container as root, its address space bounded; raises
    HarnessError when it does not finish within TIMEOUT seconds."""
    return c.exec(["sh", "-c", f'ulimit -v {MEMORY_BOUND_KB} && exec "$@"', "sh", *cmd],
                  check=False, timeout=timeout, env=env)


class Hang(Exception):
    pass


class Attack:
    """Drives the root entry points one after the other for one planted
    case, snapshotting around each, and collects what went wrong."""

    def __init__(self, c, plant: Plant):
        self.c, self.plant = c, plant
        self.violations: list[str] = []  # files outside the tree that changed
        self.problems: list[str] = []    # hangs, tracebacks, failed package runs
        self.times: dict[str, float] = {}
        self.replanted: list[str] = []   # steps before which it had to be planted again
        self.snap = product.fs_snapshot(c)
        self.canaries = canary_state(self.snap)

    def step(self, name: str, allowed, action, replant: bool = True) -> None:
        """Run ACTION (it returns a problem or None; a step that passes its
        bound raises Hang), then compare the snapshot with the one before:
        every change must match ALLOWED (patterns, or a callable that returns
        them after the step), and nothing below a canary directory may
        change at all. Every step faces the planted thing: it is planted
        again (as the service user) when the previous step's sync replaced it,
        unless REPLANT is false (after a purge: no tree, no such user)."""
        if replant and not self.plant.present(self.c):
            self.plant.plant(self.c)
            self.replanted.append(name)
        t0 = time.monotonic()
        try:
            problem = action()
        except harness.HarnessError as e:
            if "timed out" not in str(e):
                raise
            self.times[name] = time.monotonic() - t0
            self.problems.append(f"{name}: did not finish within its bound ({str(e).splitlines()[0]})")
            self._compare(name, allowed)  # what it did until then
            recover(self.c)
            self.snap = product.fs_snapshot(self.c)  # the recovery's own dpkg run is not the product's
            raise Hang(name) from None
        self.times[name] = round(time.monotonic() - t0, 1)
        if problem:
            self.problems.append(f"{name}: {problem}")
        self._compare(name, allowed)

    def _compare(self, name: str, allowed) -> None:
        if callable(allowed):
            allowed = allowed()
        after = product.fs_snapshot(self.c)
        for path, what, details in product.snapshot_changes(self.snap, after):
            canary = any(path == d or path.startswith(d + "/") for d in CANARY_DIRS)
            if canary or not product.path_allowed(path, allowed):
                self.violations.append(f"[{name}] {what} {path}: {details}")
        self.snap = after

    def report(self) -> str:
        out = [f"planted (as {product.USER}): {self.plant}"]
        if self.violations:
            out.append("changed outside the service user's tree:")
            out += [f"  {v}" for v in self.violations]
        if self.problems:
            out.append("problems:")
            out += [f"  {p}" for p in self.problems]
        lost = [f"  {path}: {old} -> {canary_state(self.snap).get(path)}"
                for path, old in sorted(self.canaries.items()) if canary_state(self.snap).get(path) != old]
        if lost:
            out.append("canaries changed:")
            out += lost
        out.append("times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.times.items()))
        out.append("planted again before: " + (", ".join(self.replanted) or "none"))
        return "\n".join(out)


def canary_state(snapshot: dict) -> dict:
    return {p: e for p, e in snapshot.items() if any(p == d or p.startswith(d + "/") for d in CANARY_DIRS)}


def recover(c) -> None:
    """After a step passed its bound: cancel systemd's jobs, kill what is left
    of the package's processes inside the container (by pid), let dpkg finish."""
    try:
        c.exec(["systemctl", "cancel"], check=False, timeout=30)
        c.exec(["systemctl", "kill", "--signal=KILL", product.UNIT, product.CONFIG_UNIT, product.RECHECK_UNIT],
               check=False, timeout=30)
        ps = c.exec(["ps", "-eo", "pid=,args="], check=False, timeout=30).stdout
        pids = [line.split()[0] for line in ps.splitlines()
                if "hailo-ollama-service" in line and "ps -eo" not in line]
        if pids:
            c.exec(["kill", "-KILL", *pids], check=False, timeout=30)
        c.exec(["systemctl", "reset-failed"], check=False, timeout=30)
        c.exec(["dpkg", "--configure", "-a"], check=False, timeout=DPKG_BOUND, env=product.APT_ENV)
    except harness.HarnessError as e:
        harness.log(f"recovery after a hang failed: {e}")


def restart_serves_every_model(c, timeout: float = 60) -> str | None:
    """Restart; None once the API answers and lists every shipped model, else what is wrong."""
    try:
        c.systemctl("reset-failed")
        c.systemctl("restart", product.UNIT, timeout=SYSTEMCTL_BOUND)
        if not product.wait_answering(c, timeout=timeout):
            return "the server does not answer after a restart"
        # Every shipped model; a manifest that upstream dropped (5.1.2's
        # qwen3) may stay when the service user deleted the mirror's record.
        shipped = product.shipped_models(c)
        if product.wait_for(lambda: shipped <= product.listed_models(c), 20):
            return None
        return f"/hailo/v1/list lacks {sorted(shipped - product.listed_models(c))}"
    except (harness.HarnessError, product.ProductError, OSError) as e:
        recover(c)
        return f"the restart failed: {str(e)[:1500]}"


def attack(c, plant: Plant) -> None:
    """The whole drill for one planted case; fails with a readable report."""
    state = c.boundary
    if state["broken"]:
        pytest.fail(f"the container was left broken by an earlier case: {state['broken']}")
    debs, hos_deb = state["debs"], state["hos_deb"]
    t_case = time.monotonic()
    make_canaries(c)  # as they were, whatever an earlier failing case did to them
    problem = restart_serves_every_model(c) if not product.answers(c) else None
    assert problem is None, problem
    plant.plant(c)
    a = Attack(c, plant)

    def systemctl(*args):
        def run():
            # a failed start is fine while the tree is sabotaged; a hang is not
            c.exec(["systemctl", *args], check=False, timeout=SYSTEMCTL_BOUND)
        return run

    def stop_start():
        c.exec(["systemctl", "stop", product.UNIT], check=False, timeout=SYSTEMCTL_BOUND)
        c.exec(["systemctl", "start", product.UNIT], check=False, timeout=SYSTEMCTL_BOUND)

    def edit():
        value = 250
        text = c.read_file(product.CONFFILE)
        text = re.sub(r"(?m)^main_poll_time_ms:.*\n?", "", text).rstrip() + f"\nmain_poll_time_ms: {value}\n"
        product.write_conffile(c, text, how="rename")
        if not product.wait_for(lambda: product.rendered_json(c).get("main_poll_time_ms") == value, EDIT_BOUND):
            raise harness.HarnessError(f"the edit timed out: not rendered within {EDIT_BOUND}s")
        if not product.settle(c, timeout=SYSTEMCTL_BOUND):
            raise harness.HarnessError(f"the config unit timed out: not idle within {SYSTEMCTL_BOUND}s")

    def reconfigure():
        product.preseed(c, "memory-max", "3G")
        r = bounded(c, ["dpkg-reconfigure", product.PACKAGE], RECONFIGURE_BOUND, env=product.APT_ENV)
        return None if r.rc == 0 else f"exited {r.rc}: {r.output[-1500:]}"

    def upstream(version, *options):
        def run():
            deb = c.copy_in(debs.standin(version), product.DEBS_IN + "/")
            r = bounded(c, ["apt-get", "install", "-y", *options, deb], DPKG_BOUND, env=product.APT_ENV)
            return None if r.rc == 0 else f"exited {r.rc}: {r.output[-1500:]}"
        return run

    def doctor(*args):
        def run():
            r = bounded(c, ["hailo-ollama-service", "doctor", *args], DOCTOR_BOUND)
            if r.rc not in (0, 1) or "Traceback" in r.output:
                return f"exited {r.rc}: {r.output[-2000:]}"
            if args:
                try:
                    doc = json.loads(r.stdout)
                    assert isinstance(doc.get("checks"), list)
                except (ValueError, AssertionError):
                    return f"not the JSON report: {r.stdout[-1000:]}"
            return None
        return run

    def apt(*args):
        def run():
            r = bounded(c, ["apt-get", "-y", *args], DPKG_BOUND, env=product.APT_ENV)
            return None if r.rc == 0 else f"exited {r.rc}: {r.output[-1500:]}"
        return run

    def reinstall():
        deb = c.copy_in(hos_deb, product.DEBS_IN + "/")
        r = bounded(c, ["apt-get", "install", "-y", deb], DPKG_BOUND, env=product.APT_ENV)
        return None if r.rc == 0 else f"exited {r.rc}: {r.output[-1500:]}"

    hung = False
    try:
        a.step("systemctl restart", RENDERED, systemctl("restart", product.UNIT))
        a.step("systemctl stop + start", RENDERED, stop_start)
        a.step("conffile edit (path unit)", (*RENDERED, product.CONFFILE), edit)
        a.step("dpkg-reconfigure", (*RENDERED, *DEBCONF_LAYER, *UCF_STATE, *DPKG_STATE), reconfigure)
        for version, options in (("5.1.2", ()), ("5.1.1", ("--allow-downgrades",))):
            # the files of the upstream package, before and after, may change
            before = product.package_files(c, product.UPSTREAM)
            a.step(f"upstream {version} (dpkg trigger)",
                   lambda before=before: (*RENDERED, *DPKG_STATE, *UPSTREAM_JSON,
                                          *sorted(before | product.package_files(c, product.UPSTREAM))),
                   upstream(version, *options))
        a.step("doctor (root)", RENDERED, doctor())
        a.step("doctor --json (root)", RENDERED, doctor("--json"))
        if plant.package_runs:
            a.step("apt remove", allowed_for_package_runs(c, purge=False), apt("remove", product.PACKAGE))
            a.step("apt install (after remove)", allowed_for_package_runs(c, purge=False), reinstall)
    except Hang:
        hung = True

    # Remove what was planted; a restart must serve every model again.
    plant.remove(c)
    if not product.installed(c):
        r = bounded(c, ["apt-get", "install", "-y", c.copy_in(hos_deb, product.DEBS_IN + "/")], DPKG_BOUND,
                    env=product.APT_ENV)
        if r.rc != 0:
            a.problems.append(f"reinstall after removing the planted thing exited {r.rc}: {r.output[-1500:]}")
    if product.dpkg_status(c, product.UPSTREAM).split()[-1:] != ["5.1.1-1"]:
        upstream("5.1.1", "--allow-downgrades")()
    recovered = restart_serves_every_model(c)
    if recovered:
        a.problems.append(f"once the planted thing was removed: {recovered}")

    # Plant it again, then purge: root removes the whole tree, and nothing else.
    try:
        plant.plant(c)
        a.snap = product.fs_snapshot(c)
        a.step("apt purge", allowed_for_package_runs(c, purge=True), apt("purge", product.PACKAGE))
        for gone in (TREE, product.BOOK_DIR):
            if c.exists(gone):
                a.problems.append(f"apt purge left {gone}: "
                                  + c.exec(["ls", "-la", gone], check=False).output[-800:])
        a.step("apt install (after purge)", allowed_for_package_runs(c, purge=True), reinstall, replant=False)
    except Hang:
        hung = True
    except AssertionError as e:  # could not plant again (e.g. the tree is not back)
        a.problems.append(f"planting again before the purge failed: {e}")
    recovered = restart_serves_every_model(c)
    if recovered:
        a.problems.append(f"after purge and reinstall: {recovered}")
        state["broken"] = f"{plant}: {recovered}"
    if hung and not state["broken"]:
        # the package run that hung may have left it half-configured: start over
        apt("purge", product.PACKAGE)()
        reinstall()
        if restart_serves_every_model(c):
            state["broken"] = f"{plant}: no recovery after a hang"
    a.times["case"] = time.monotonic() - t_case
    state["times"][repr(plant)] = a.times
    harness.log(f"boundary: {plant}: {a.times['case']:.0f}s; planted again before: "
                f"{', '.join(a.replanted) or 'none'}")
    assert not a.violations and not a.problems and canary_state(a.snap) == a.canaries, a.report()


# ------------------------------------------------------------------ tests
def test_roots_bookkeeping_is_out_of_the_service_users_reach(boundary):
    c = boundary
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    info = c.exec(["stat", "-c", "%U:%G %a %F", product.BOOK_DIR, product.BOOK], check=False)
    assert info.rc == 0, info.output
    (book_dir, book) = info.stdout.splitlines()
    assert book_dir.startswith("root:root ") and book_dir.endswith(" directory"), book_dir
    assert int(book_dir.split()[1], 8) & 0o022 == 0, book_dir
    assert book.startswith("root:root ") and int(book.split()[1], 8) & 0o022 == 0, book
    tries = product.as_service_user(
        c, f"echo x >> {product.BOOK}; touch {product.BOOK_DIR}/planted; mv {product.BOOK} {product.BOOK}.x; true")
    assert "Permission denied" in tries.output, tries.output
    assert not c.exists(f"{product.BOOK_DIR}/planted") and c.exists(product.BOOK)
    # and nothing of the package outside the tree is the service user's to write
    r = c.exec(["find", "/etc", "/usr", "/var/lib", "/run/hailo-ollama", "-path", TREE, "-prune", "-o",
                "(", "-user", product.USER, "-o", "-group", product.USER, ")", "-print"], check=False)
    assert not r.stdout.strip(), r.stdout


def test_the_sandbox_exposure_is_still_at_most_2_0(boundary):
    r = boundary.exec(["systemd-analyze", "security", "--no-pager", product.UNIT], check=False)
    m = re.search(r"Overall exposure level for \S+:\s*([0-9.]+)", product.strip_ansi(r.output))
    assert m, r.output[-3000:]
    assert float(m.group(1)) <= 2.0, r.output[-3000:]


@pytest.mark.parametrize("where,target,package_runs", SYMLINKS, ids=[w for w, _, _ in SYMLINKS])
def test_root_never_follows_a_symlink_the_service_user_planted_at(boundary, where, target, package_runs):
    attack(boundary, Plant("symlink", where, target, package_runs))


@pytest.mark.parametrize("where,package_runs", SPECIAL_FILES, ids=[w for w, _ in SPECIAL_FILES])
def test_root_never_opens_a_fifo_the_service_user_planted_at(boundary, where, package_runs):
    attack(boundary, Plant("fifo", where, package_runs=package_runs))


@pytest.mark.parametrize("where,package_runs", SPECIAL_FILES, ids=[w for w, _ in SPECIAL_FILES])
def test_root_never_reads_an_8_gib_sparse_file_the_service_user_planted_at(boundary, where, package_runs):
    attack(boundary, Plant("sparse", where, package_runs=not package_runs))


@pytest.mark.parametrize("where,package_runs", RECORDS, ids=[w for w, _ in RECORDS])
def test_root_never_acts_on_bookkeeping_the_service_user_pointed_outside_its_tree(boundary, where, package_runs):
    attack(boundary, Plant("record", where, package_runs=package_runs))
