"""Life cycle 14: apt purge removes exactly what the package created."""

import re

import pytest

import product

pytestmark = pytest.mark.system

# Paths whose appearance or disappearance says nothing about our package:
# package-manager and systemd bookkeeping, logs, caches, backups of the user
# databases, and byte-code Python writes for modules that are not ours.
VOLATILE = re.compile(r"""^(
    /var/lib/dpkg/ | /var/lib/apt/ | /var/cache/apt/ | /var/cache/debconf/ | /var/log/ |
    /var/lib/systemd/ | /var/cache/ldconfig/ | /etc/ld\.so\.cache$ | /root/ | /srv/debs |
    /var/lib/ucf/hashfile | /var/lib/ucf/registry | /var/lib/ucf/cache$ |
    /etc/(passwd|group|shadow|gshadow|subuid|subgid)-$ |
    /usr/lib/python3[^/]*/(?!dist-packages/hailo_ollama_service).*__pycache__
)""", re.X)


def _snapshot(c) -> "set[str]":
    r = c.exec(["find", "/", "-xdev", "-path", "/proc", "-prune", "-o", "-print"], timeout=120)
    return {p for p in r.stdout.splitlines() if not VOLATILE.match(p)}


@pytest.fixture(scope="module")
def purged(base_root, debs, hos_deb):
    """Install, use (pull, debconf answer, conffile edit), then purge."""
    import harness
    c = harness.Container("purge", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs)
        c.write_file(f"{product.DEBS_IN}/.keep", "")
        state = {"before": _snapshot(c),
                 "groups_before": c.exec(["getent", "group"]).stdout}
        r = product.apt_install(c, hos_deb)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        product.ensure_pulled(c, "qwen2:1.5b")
        product.preseed(c, "port", "11500")
        assert product.reconfigure(c).rc == 0
        assert product.wait_answering(c, 11500, timeout=30), c.diagnostics()
        product.write_conffile(c, product.port_config(11501, c.read_file(product.CONFFILE)), how="rename")
        assert product.wait_answering(c, 11501, timeout=30), c.diagnostics()
        state["hailo_group"] = c.exec(["getent", "group", "hailo"], check=False).rc == 0
        state["result"] = product.apt(c, "purge", product.PACKAGE)
        c.systemctl("daemon-reload")
        state["after"] = _snapshot(c)
        c.state = state
        yield c
    finally:
        c.destroy()


def test_purge_succeeds(purged):
    r = purged.state["result"]
    assert r.rc == 0, r.output
    assert product.dpkg_status(purged) in ("", "unknown ok not-installed")


@pytest.mark.parametrize("path", [product.STATE, "/var/log/hailo-ollama", "/run/hailo-ollama",
                                  product.DROPIN, product.DEBCONF_LAYER, product.CONFFILE,
                                  product.JSON_DISTRIB, "/etc/hailo"])
def test_purge_leaves_nothing_at(purged, path):
    assert not purged.exists(path), purged.exec(["ls", "-la", path], check=False).output


def test_purge_leaves_no_new_file(purged):
    left = sorted(purged.state["after"] - purged.state["before"])
    assert not left, "left behind:\n" + "\n".join(left)


def test_purge_removes_nothing_it_did_not_create(purged):
    gone = sorted(purged.state["before"] - purged.state["after"])
    assert not gone, "removed:\n" + "\n".join(gone)
    if purged.state["hailo_group"]:
        assert purged.exec(["getent", "group", "hailo"], check=False).rc == 0, "the shared hailo group is gone"
    before = {l.split(":")[0] for l in purged.state["groups_before"].splitlines()}
    after = {l.split(":")[0] for l in purged.exec(["getent", "group"]).stdout.splitlines()}
    assert before <= after, f"groups removed: {before - after}"


def test_purge_restores_upstreams_json_byte_for_byte(purged, debs):
    upstream = product.deb_file(debs.standin("5.1.1"), product.JSON)
    assert purged.exec(["sha256sum", product.JSON]).stdout.split()[0] == product.sha256(upstream)
    assert purged.exec(["dpkg-divert", "--list", "/etc/xdg/hailo-ollama/*"]).stdout.strip() == ""


def test_purge_leaves_upstream_intact(purged):
    c = purged
    assert product.installed(c, product.UPSTREAM)
    r = c.exec(["dpkg", "--verify", product.UPSTREAM], check=False)
    assert r.rc == 0 and not r.stdout.strip(), r.output
    assert c.exists("/usr/bin/hailo-ollama")


def test_purge_forgets_the_debconf_answers(purged):
    assert product.debconf_show(purged).strip() == ""


def test_purge_removes_the_user_and_stops_everything(purged):
    c = purged
    assert c.exec(["getent", "passwd", product.USER], check=False).rc != 0
    assert c.exec(["getent", "group", product.USER], check=False).rc != 0
    assert not product.server_processes(c)
    units = c.exec(["systemctl", "list-unit-files", "--no-legend", "hailo-ollama*"],
                   check=False).stdout.strip()
    assert not units, units
    assert not product.answers(c, 11501) and not product.answers(c, 11434)
