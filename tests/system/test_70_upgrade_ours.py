"""Life cycle 11: upgrading hailo-ollama-service from the previous release, 1.0.0 as
released (built from the commit tagged v1.0.0, see product.Debs.hos_previous).

test_71 upgrades from it with bookkeeping poisoned by the service user."""

import pytest

import product

pytestmark = pytest.mark.system

PROMPT = "Configuration file '/etc/hailo/hailo-ollama.yaml'"


def _install_previous(c, debs, hos_previous_deb, model):
    product.install_standin(c, debs)
    r = product.apt_install(c, hos_previous_deb)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c).endswith(" " + product.deb_field(hos_previous_deb, "Version"))
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    product.ensure_pulled(c, model)
    return product.tag_names(c)


def _models(c):
    return c.exec(["sh", "-c", f"ls {product.BLOB}"], check=False).stdout.split()


@pytest.fixture
def model():
    return "qwen2:1.5b"


def test_an_upgrade_of_an_unedited_install_asks_nothing_and_keeps_the_models(
        container, debs, hos_previous_deb, hos_deb, shipped_conffile, model):
    c = container
    tags = _install_previous(c, debs, hos_previous_deb, model)
    blobs = _models(c)
    r = product.apt_install(c, hos_deb)
    assert r.rc == 0, r.output
    assert PROMPT not in r.output and "(Y/I/N/O/D/Z)" not in r.output, r.output
    assert product.dpkg_status(c) == f"install ok installed {debs.version}"
    assert c.read_file(product.CONFFILE) == shipped_conffile
    left = c.exec(["sh", "-c", "ls /etc/hailo/*.dpkg-* /etc/hailo/*.ucf-* 2>/dev/null || true"]).stdout
    assert not left.strip(), left
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    assert product.tag_names(c) == tags
    assert _models(c) == blobs
    assert product.is_active(c) == "active" and product.is_enabled(c) == "enabled"


def test_an_upgrade_keeps_the_admins_conffile_edits_and_the_models(
        container, debs, hos_previous_deb, hos_deb, model):
    c = container
    tags = _install_previous(c, debs, hos_previous_deb, model)
    edited = product.port_config(11508, c.read_file(product.CONFFILE))
    product.write_conffile(c, edited, how="rename")
    assert product.wait_answering(c, 11508, timeout=30), c.diagnostics()
    r = product.apt_install(c, hos_deb, options=product.KEEP_CONFFILES)
    assert r.rc == 0, r.output
    assert product.dpkg_status(c) == f"install ok installed {debs.version}"
    assert c.read_file(product.CONFFILE) == edited
    product.conffile_upgrade_check(c, hos_previous_deb, hos_deb, r.output)
    assert product.wait_answering(c, 11508, timeout=60), c.diagnostics()
    assert product.tag_names(c, port=11508) == tags
