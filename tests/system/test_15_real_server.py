"""The life cycle against Hailo's REAL server (5.1.1 built for x86-64, no device).

Everything here needs no working device: install, list under systemd, a pull
whose blob is already where a finished pull leaves it (there is no internet),
a crash, bad edits, reboot, remove and purge.  One container per release,
used in file order: each test goes on from where the one before left it.
"""

import json

import pytest

import harness
import product

pytestmark = pytest.mark.system

# A model the admin adds, as the README describes: its own manifest in the
# data dir, whose hef_h10h is the sha256 of a blob (here a small file placed
# where a finished pull leaves it, owned by the service user).
ADDED = "hos-test-model:1b"
BLOB = b"hailo-ollama-service test blob: not a real HEF\n" * 1000


def _manifest(c) -> dict:
    base = json.loads(c.read_file(f"{product.UPSTREAM_MANIFESTS}/qwen2/1.5b/manifest.json"))
    base["hef_h10h"] = product.sha256(BLOB)
    return base


@pytest.fixture(scope="module")
def real(base_root, real_server_deb, hos_deb):
    """A container with the real server package, then ours, installed by apt."""
    c = harness.Container("real-server", root=base_root)
    try:
        c.boot()
        product.apt_install(c, real_server_deb, check=True)
        c.real_deb = real_server_deb
        c.install_result = product.apt_install(c, hos_deb, timeout=600)
        yield c
    finally:
        c.destroy()


def _serving(c, port: int = product.PORT) -> None:
    assert product.wait_answering(c, port, timeout=60), c.diagnostics()
    assert product.settle(c), f"jobs still queued: {product.jobs(c)}"


def test_the_install_on_the_real_server_succeeds(real):
    r = real.install_result
    assert r.rc == 0, f"apt-get install failed ({r.rc}):\n{r.output[-4000:]}"
    assert product.installed(real)
    assert product.is_enabled(real) == "enabled"


def test_the_real_server_answers_on_11434_as_the_service_user(real):
    _serving(real)
    assert product.is_active(real) == "active"
    pid = product.main_pid(real)
    assert real.exec(["readlink", f"/proc/{pid}/exe"]).stdout.strip() == "/usr/bin/hailo-ollama"
    assert real.exec(["head", "-c", "4", "/usr/bin/hailo-ollama"]).stdout == "\x7fELF", "not the real binary"
    user = real.exec(["ps", "-o", "user:32=", "-p", str(pid)]).stdout.strip()
    assert user == product.USER
    assert product.api(real, "GET", "/api/version") == (200, {"version": "0.5.1"})
    log = product.journal_text(real, unit=product.UNIT)
    assert "Server running on port 11434" in log, log[-2000:]


def test_the_real_server_lists_every_shipped_model_under_systemd(real):
    shipped = product.shipped_models(real)
    assert len(shipped) == 5, shipped
    assert product.listed_models(real) == shipped


def test_a_pull_whose_blob_is_in_place_succeeds_and_the_model_is_served(real):
    c = real
    manifest = json.dumps(_manifest(c))
    model, tag = ADDED.split(":")
    product.as_service_user(c, f"mkdir -p models/manifests/{model}/{tag} && "
                               f"cat > models/manifests/{model}/{tag}/manifest.json", input=manifest)
    c.systemctl("restart", product.UNIT, check=True, timeout=120)
    _serving(c)
    assert ADDED in product.listed_models(c)
    assert ADDED not in product.tag_names(c)
    blob = f"models/blob/sha256_{product.sha256(BLOB)}"
    product.as_service_user(c, f"cat > {blob}", input=BLOB)
    r = c.exec(["hailo-ollama-service", "pull", ADDED], check=False, timeout=120)
    assert r.rc == 0, r.output
    assert ADDED in product.tag_names(c)
    assert c.exec(["sha256sum", f"{product.STATE}/{blob}"]).stdout.split()[0] == product.sha256(BLOB)


def test_a_chat_without_a_device_fails_cleanly_and_a_crash_is_restarted(real):
    c = real
    status, body = product.api(c, "POST", "/api/chat", body={
        "model": ADDED, "stream": False, "messages": [{"role": "user", "content": "hi"}]})
    assert status == 500, body
    product.unload(c, ADDED)
    before = product.main_pid(c)
    c.exec(["kill", "-SEGV", str(before)])
    assert product.wait_for(lambda: product.main_pid(c) not in (0, before) and product.answers(c), 60), \
        c.diagnostics()
    _serving(c)


def test_a_bad_edit_is_refused_and_the_last_good_config_keeps_serving(real, shipped_conffile):
    c = real
    pid = product.main_pid(c)
    since = c.now()
    product.write_conffile(c, shipped_conffile.rstrip() + '\n\nserver:\n  port: "eleven"\n', how="rename")
    assert product.wait_for(lambda: "server.port" in product.journal_text(c, since=since), 30), \
        product.journal_text(c, since=since)[-3000:]
    assert product.settle(c)
    assert product.server_port(c) == product.PORT
    assert product.main_pid(c) == pid, "a refused edit restarted the server"
    assert product.answers(c)
    product.write_conffile(c, product.port_config(11530, shipped_conffile), how="rename")
    _serving(c, 11530)
    assert product.server_port(c) == 11530


def test_after_a_reboot_the_real_server_serves_with_its_models(real):
    c = real
    c.reboot()
    _serving(c, 11530)
    assert product.is_active(c) == "active"
    assert ADDED in product.tag_names(c, 11530)
    assert product.listed_models(c, 11530) == product.shipped_models(c) | {ADDED}


def test_remove_keeps_the_models_and_a_reinstall_serves_them(real, hos_deb, shipped_conffile):
    c = real
    r = product.apt(c, "remove", product.PACKAGE)
    assert r.rc == 0, r.output
    assert not product.server_processes(c)
    assert c.exists(f"{product.STATE}/models/blob/sha256_{product.sha256(BLOB)}")
    assert c.exists(product.CONFFILE)
    r = product.apt_install(c, hos_deb)
    assert r.rc == 0, r.output
    _serving(c, 11530)
    assert ADDED in product.tag_names(c, 11530)


def test_purge_removes_everything_and_restores_upstreams_json(real):
    c = real
    r = product.apt(c, "purge", product.PACKAGE)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c) in ("", "unknown ok not-installed")
    for path in (product.STATE, product.CONFFILE, product.DROPIN, product.BOOK_DIR, "/etc/hailo"):
        assert not c.exists(path), path
    assert c.exec(["getent", "passwd", product.USER], check=False).rc != 0
    upstream = product.deb_file(c.real_deb, product.JSON)
    assert c.exec(["sha256sum", product.JSON]).stdout.split()[0] == product.sha256(upstream)
    r = c.exec(["dpkg", "--verify", product.UPSTREAM], check=False)
    assert r.rc == 0 and not r.stdout.strip(), r.output
