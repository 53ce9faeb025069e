"""Issue 9, point 6: a real upgrade from 1.0.0 as released, whose bookkeeping
lay in the service user's tree (/var/lib/hailo-ollama/render-state.json).

The service user may have rewritten that file before the upgrade (someone who
took over the server can). After the upgrade root must not have trusted
any of it: the canary it pointed at is intact, the last good settings are
root's own (/var/lib/hailo-ollama-service/state.json, out of the service
user's reach), and they are what the server uses across a reboot with
invalid settings. The settings, the edited conffile and the pulled model are
kept.
"""

import json

import pytest

import product

pytestmark = pytest.mark.system

MODEL = "qwen2:1.5b"
PORT = 11508
POISONED_PORT = 11999
CANARY_DIR = "/etc/hos-canary"
VICTIM = f"{CANARY_DIR}/victim"
INVALID = 'server:\n  port: "not a port"\n'


def _sha256(c, path):
    return c.exec(["sha256sum", path]).stdout.split()[0]


def _blobs(c):
    """name -> sha256 of every pulled blob."""
    r = c.exec(["sh", "-c", f'cd {product.BLOB} && for f in *; do [ -f "$f" ] && sha256sum "$f"; done'],
               check=False)
    return {name: digest for digest, name in (l.split() for l in r.stdout.splitlines() if l.strip())}


def _poison_legacy_bookkeeping(c, victim_digest):
    """As the service user only: rewrite 1.0.0's render-state.json so that it
    names another port as the last good settings and claims the root-owned
    canary (outside the tree, by '..' and by an absolute path, with its true
    sha256) as a manifest it mirrored: 1.0.0's root render removed such
    files once upstream no longer shipped them."""
    text = c.exec(["cat", product.LEGACY_STATE], check=False).stdout
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    last = doc.get("last_good") if isinstance(doc.get("last_good"), dict) else {}
    last["server.port"] = POISONED_PORT
    doc["last_good"] = last
    mirrored = doc.get("mirrored") if isinstance(doc.get("mirrored"), dict) else {}
    mirrored["../../../../../../../../" + VICTIM.lstrip("/")] = victim_digest
    mirrored[VICTIM + "-absolute"] = victim_digest
    doc["mirrored"] = mirrored
    new = product.LEGACY_STATE + ".new"
    product.as_service_user(c, f"cat > {new} && mv -f {new} {product.LEGACY_STATE}",
                            input=json.dumps(doc, indent=2))
    owner = c.exec(["stat", "-c", "%U", product.LEGACY_STATE]).stdout.strip()
    assert owner == product.USER, f"the poisoned file was not written by the service user ({owner})"


def _last_good_port(book: dict):
    last = book.get("last_good")
    if not isinstance(last, dict):
        return None
    if "server.port" in last:
        return last["server.port"]
    server = last.get("server")
    return server.get("port") if isinstance(server, dict) else None


def test_an_upgrade_from_1_0_0_trusts_nothing_of_its_old_bookkeeping_and_keeps_settings_and_models(
        container, debs, hos_previous_deb, hos_deb):
    c = container
    # 1.0.0 as released, with a pulled model and an edited conffile
    product.install_standin(c, debs)
    r = product.apt_install(c, hos_previous_deb)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c) == f"install ok installed {debs.PREVIOUS_VERSION}"
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    product.ensure_pulled(c, MODEL)
    tags = product.tag_names(c)
    assert MODEL in tags
    blobs = _blobs(c)
    assert blobs, "the pull left no blob"
    edited = product.port_config(PORT, c.read_file(product.CONFFILE))
    product.write_conffile(c, edited, how="rename")
    assert product.wait_answering(c, PORT, timeout=30), c.diagnostics()
    assert product.settle(c)

    # a root-owned canary, then the old bookkeeping poisoned by the service user
    c.exec(["mkdir", "-p", CANARY_DIR])
    for path in (VICTIM, VICTIM + "-absolute"):
        c.write_file(path, "root's own file, world-readable\n", mode=0o644)
    victim = _sha256(c, VICTIM)
    assert c.exists(product.LEGACY_STATE), "1.0.0 keeps no render-state.json: not the release under test?"
    _poison_legacy_bookkeeping(c, victim)

    # unattended, as a fleet upgrades: the admin's edited conffile is kept
    r = product.apt_install(c, hos_deb, options=product.KEEP_CONFFILES)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c) == f"install ok installed {debs.version}"
    for path in (VICTIM, VICTIM + "-absolute"):
        assert c.exists(path) and _sha256(c, path) == victim, f"root acted on the poisoned bookkeeping: {path}"
    assert c.read_file(product.CONFFILE) == edited
    product.conffile_upgrade_check(c, hos_previous_deb, hos_deb, r.output)
    assert product.wait_answering(c, PORT, timeout=60), c.diagnostics()
    assert not product.answers(c, POISONED_PORT)
    assert product.tag_names(c, port=PORT) == tags
    assert _blobs(c) == blobs
    assert product.listed_models(c, port=PORT) == product.shipped_models(c)
    assert product.is_active(c) == "active" and product.is_enabled(c) == "enabled"

    # nothing of the old bookkeeping is left; root's own is out of the service user's reach
    assert product.settle(c)
    assert not c.exists(product.LEGACY_STATE), c.exec(["ls", "-la", product.STATE]).stdout
    info = c.exec(["stat", "-c", "%U:%G %a", product.BOOK_DIR, product.BOOK], check=False)
    assert info.rc == 0, info.output
    for line in info.stdout.splitlines():
        owner, mode = line.split()
        assert owner == "root:root" and int(mode, 8) & 0o022 == 0, info.stdout
    tries = product.as_service_user(c, f"echo x >> {product.BOOK}; touch {product.BOOK_DIR}/x; true")
    assert "Permission denied" in tries.output, tries.output
    book = json.loads(c.read_file(product.BOOK))
    assert _last_good_port(book) == PORT, book

    # invalid settings: the last good configuration is kept, across a reboot too,
    # even with the old bookkeeping planted again beforehand
    product.write_conffile(c, INVALID, how="rename")
    assert product.settle(c)
    assert product.wait_answering(c, PORT, timeout=30), c.diagnostics()
    assert _last_good_port(json.loads(c.read_file(product.BOOK))) == PORT
    _poison_legacy_bookkeeping(c, victim)
    c.reboot()
    assert product.wait_answering(c, PORT, timeout=90), c.diagnostics()
    assert not product.answers(c, POISONED_PORT)
    assert product.server_port(c) == PORT
    env = c.read_file(product.ENV_FILE)
    assert f"OLLAMA_HOST=0.0.0.0:{PORT}\n" in env, env
    assert c.read_file(product.CONFFILE) == INVALID
    for path in (VICTIM, VICTIM + "-absolute"):
        assert c.exists(path) and _sha256(c, path) == victim, f"root acted on the poisoned bookkeeping: {path}"
    assert product.tag_names(c, port=PORT) == tags
