"""Life cycle 13: apt remove, install again, --reinstall (shared container)."""

import pytest

import product

pytestmark = pytest.mark.system


def test_remove_stops_and_disables_and_keeps_settings_and_models(installed_system, model):
    c = installed_system
    product.ensure_pulled(c, model)
    blobs = c.exec(["ls", product.BLOB]).stdout.split()
    conffile = c.read_file(product.CONFFILE)
    r = product.apt(c, "remove", product.PACKAGE)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c).startswith("deinstall ok config-files")
    assert product.is_active(c) != "active"
    assert not product.server_processes(c), product.server_processes(c)
    assert not product.answers(c)
    # Disabled in effect: the unit files are gone (debhelper keeps the
    # enablement symlinks of a removed package, dangling, until the purge, so
    # that a reinstall comes back enabled), and nothing starts at boot.
    for unit in (product.UNIT, product.PATH_UNIT):
        assert product.is_enabled(c, unit) not in ("enabled", "enabled-runtime", "static"), unit
    assert not c.exec(["systemctl", "list-unit-files", "--no-legend", "hailo-ollama*"],
                      check=False).stdout.strip()
    assert c.read_file(product.CONFFILE) == conffile
    assert c.exists(product.DEBCONF_LAYER)
    assert c.exec(["ls", product.BLOB]).stdout.split() == blobs
    c.reboot()
    assert not product.server_processes(c), product.server_processes(c)
    assert not product.answers(c)
    assert c.exec(["ls", product.BLOB]).stdout.split() == blobs


def test_installing_again_brings_it_back_with_the_models(installed_system, hos_deb, model):
    c = installed_system
    product.ensure_pulled(c, model)
    tags = product.tag_names(c)
    product.apt(c, "remove", product.PACKAGE, check=True)
    r = product.apt_install(c, hos_deb)
    assert r.rc == 0, r.output
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    assert product.is_enabled(c) == "enabled" and product.is_active(c) == "active"
    assert product.tag_names(c) == tags


def test_apt_install_reinstall_is_clean(installed_system, hos_deb):
    c = installed_system
    r = product.apt_install(c, hos_deb, options=["--reinstall"])
    assert r.rc == 0, r.output
    bad = [l for l in r.output.splitlines()
           if l.startswith(("E:", "W:", "dpkg: error", "dpkg: warning")) or "Traceback" in l]
    assert not bad, f"reinstall output has errors/warnings: {bad}\n{r.output}"
    assert c.exec(["dpkg", "--audit"]).stdout.strip() == ""
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    assert product.is_active(c) == "active" and product.is_enabled(c) == "enabled"
    diversions = c.exec(["dpkg-divert", "--list", "/etc/xdg/hailo-ollama/*"]).stdout.strip().splitlines()
    assert len(diversions) == 1, diversions
    assert product.rendered_json(c) == product.SEED
    assert c.exec(["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip() == ""
