"""Life cycle 1-2: install without a device, then enabled, active, answering."""

import json

import pytest

import product

pytestmark = pytest.mark.system

INSTALL_BOUND_S = 120  # postinst's own wait is bounded; without a device it must not hang


def test_apt_install_without_a_device_succeeds_in_bounded_time(system):
    r = system.install_result
    assert not system.had_device_at_install, "a device node existed at install time"
    assert r.rc == 0, f"apt-get install failed ({r.rc}):\n{r.output[-4000:]}"
    assert r.duration < INSTALL_BOUND_S, f"install took {r.duration:.0f}s (bound {INSTALL_BOUND_S}s)"
    assert product.dpkg_status(system).startswith("install ok installed")


def test_the_service_is_enabled_and_active(installed_system):
    c = installed_system
    assert product.is_enabled(c) == "enabled"
    assert product.is_active(c) == "active"
    assert product.main_pid(c) > 0


def test_the_api_answers_on_11434_inside_the_container(installed_system):
    r = installed_system.exec(["curl", "-fsS", "--max-time", "5", "http://127.0.0.1:11434/api/version"],
                              check=False)
    assert r.rc == 0, r.output
    assert json.loads(r.stdout) == {"version": "0.5.1"}


def test_the_api_answers_on_11434_from_the_host(installed_system):
    status, body = product.api(installed_system, "GET", "/api/version")
    assert status == 200
    assert body == {"version": "0.5.1"}


def test_the_server_runs_as_the_hailo_ollama_user(installed_system):
    c = installed_system
    pid = product.main_pid(c)
    r = c.exec(["ps", "-o", "user:32=,group:32=,args=", "-p", str(pid)])
    user, group, args = r.stdout.split(None, 2)
    assert user == "hailo-ollama", r.stdout
    assert "/usr/bin/hailo-ollama" in args, r.stdout
    groups = c.exec(["id", "-nG", "hailo-ollama"]).stdout.split()
    assert "hailo" in groups, f"hailo-ollama is not in group hailo: {groups}"
    shell = c.exec(["getent", "passwd", "hailo-ollama"]).stdout.strip().split(":")
    assert shell[5] == "/var/lib/hailo-ollama", shell
    assert shell[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"), shell


def test_the_rendered_json_has_the_seed_values(installed_system):
    assert product.rendered_json(installed_system) == product.SEED


def test_upstream_json_is_diverted_not_overwritten(installed_system, standin_debs, debs):
    c = installed_system
    listing = c.exec(["dpkg-divert", "--list", product.JSON]).stdout
    assert (f"diversion of {product.JSON} to {product.JSON_DISTRIB} by {product.PACKAGE}"
            in listing), listing
    upstream = product.deb_file(debs.standin(product.dpkg_status(c, product.UPSTREAM).split()[-1]
                                             .split("-")[0]), product.JSON)
    distrib = c.exec(["sha256sum", product.JSON_DISTRIB]).stdout.split()[0]
    assert distrib == product.sha256(upstream), "upstream's JSON under .distrib was changed"
    assert json.loads(upstream)["server"]["port"] == 8000
