"""Life cycle 11: upgrading hailo-ollama-service from earlier releases, as
released (each built from the commit tagged with its version, see
product.Debs.release): the first, 1.0.0, and the last one before this
version (Debs.LAST_RELEASE).

test_71 upgrades from 1.0.0 with bookkeeping poisoned by the service user."""

import re
from pathlib import PurePosixPath

import pytest

import product
import sandbox_watch

pytestmark = pytest.mark.system

PROMPT = "Configuration file '/etc/hailo/hailo-ollama.yaml'"
PACKAGE_DIR = "/usr/lib/python3/dist-packages/hailo_ollama_service"


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


def test_the_last_release_is_the_changelogs_entry_before_this_version():
    versions = re.findall(r"^hailo-ollama-service \(([^)]+)\)", (product.REPO / "debian/changelog").read_text(),
                          flags=re.M)
    assert product.Debs.LAST_RELEASE == versions[1], versions[:2]


def test_an_upgrade_from_the_last_release_while_serving_fails_closed_and_keeps_the_user_in_its_sandbox(
        container, debs, hos_last_release_deb, hos_deb, shipped_conffile, model):
    """Root never runs the service user's step (the server's start does, in
    the sandbox) and the unit sets a loopback OLLAMA_HOST that the rendered
    file overrides (since 1.4.0; 1.3.0, then the last release, ran
    sync-models through setpriv and left OLLAMA_HOST unset). The upgrade
    itself (preinst, postinst, the restart) runs no process of that user
    outside the sandbox, and the package's modules move without a trace
    of the old layout (1.4.1 split them into folders)."""
    c = container
    tags = _install_previous(c, debs, hos_last_release_deb, model)
    old_modules = set(c.exec(["sh", "-c", f"cd {PACKAGE_DIR} && find . -name '*.py' | sort"]).stdout.split())
    blobs = _models(c)
    since = c.now()
    with sandbox_watch.Watch(c) as watch:
        r = product.apt_install(c, hos_deb)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        assert product.settle(c)
    assert not watch.violations(), watch.violations()
    assert any(row["cgroup"] == product.UNIT for row in watch.seen), watch.result
    assert PROMPT not in r.output, r.output
    assert product.dpkg_status(c) == f"install ok installed {debs.version}"
    assert c.read_file(product.CONFFILE) == shipped_conffile
    assert product.is_active(c) == "active" and product.is_enabled(c) == "enabled"
    assert "OLLAMA_HOST=127.0.0.1:11434" in c.unit_property(product.UNIT, "Environment")
    assert "hailo-ollama-service serve" in c.unit_property(product.UNIT, "ExecStart")
    pid = product.main_pid(c)
    assert c.read_file(f"/proc/{pid}/comm").strip() == "hailo-ollama"
    assert c.exec(["ps", "-o", "user=", "-p", str(pid)]).stdout.strip() == "hailo-ollama"
    # the rendered environment wins over the unit's loopback default
    assert "OLLAMA_HOST=0.0.0.0:11434" in c.read_file(f"/proc/{pid}/environ").replace("\0", "\n")
    assert product.tag_names(c) == tags and _models(c) == blobs
    # exactly the new package's modules, no stale byte code of a removed one
    new_modules = set(c.exec(["sh", "-c", f"cd {PACKAGE_DIR} && find . -name '*.py' | sort"]).stdout.split())
    shipped = {"./" + p.relative_to(product.REPO / "hailo_ollama_service").as_posix()
               for p in (product.REPO / "hailo_ollama_service").rglob("*.py")}
    assert new_modules == shipped, (old_modules - new_modules, new_modules ^ shipped)
    pycs = c.exec(["sh", "-c", f"cd {PACKAGE_DIR} && find . -name '*.pyc'"]).stdout.split()
    orphans = [p for p in pycs
               if "./" + (PurePosixPath(p).parent.parent / PurePosixPath(p).name.split(".")[0]).as_posix() + ".py"
               not in new_modules]
    assert not orphans, orphans
    journal = c.journal(lines=400, since=since)
    assert "Failed with result" not in journal, journal
    # as root, sync-models is refused and names the restart that does it
    r = c.exec(["hailo-ollama-service", "sync-models"], check=False)
    assert r.rc == 1 and "systemctl restart hailo-ollama.service" in r.stderr, r.output
    # and it starts again as the new unit, models still in sync
    c.systemctl("restart", product.UNIT, check=True, timeout=90)
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    assert product.main_pid(c) != pid and product.tag_names(c) == tags
