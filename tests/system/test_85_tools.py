"""Operator tools on a booted install (issue 5): verify, doctor, wait-ready, pull.

Each unhealthy state is made on the shared container and must show up as
the right failure with its fix; the fixture resets the container after.
"""

import json

import pytest

import product

pytestmark = pytest.mark.system

CLI = "hailo-ollama-service"


def doctor(c) -> dict:
    """Run `doctor --json` inside; return {"code": exit status, "checks": {id: check}}."""
    r = c.exec([CLI, "doctor", "--json"], check=False, timeout=60)
    doc = json.loads(r.stdout)
    return {"code": r.rc, "doc": doc, "checks": {check["id"]: check for check in doc["checks"]}}


def test_verify_and_doctor_report_ok_on_a_healthy_install(installed_system, model):
    c = installed_system
    c.add_device("/dev/hailo0")
    product.ensure_pulled(c, model)
    verify = c.exec([CLI, "verify"], check=False)
    assert verify.rc == 0, verify.output
    assert "[OK  ] unit" in verify.stdout and "[OK  ] api" in verify.stdout
    assert "port 11434 held by hailo-ollama" in verify.stdout
    result = doctor(c)
    assert result["code"] == 0, json.dumps(result["doc"], indent=1)
    statuses = {name: check["status"] for name, check in result["checks"].items()}
    for name in ("binary", "generation", "device", "settings", "diversion", "port", "unit", "api", "models"):
        assert statuses[name] == "ok", (name, result["checks"][name])
    assert statuses["firmware"] == "skip"  # no hailortcli in the test container
    assert "hailo-ollama can open it" in result["checks"]["device"]["found"]


def test_a_stopped_service_fails_verify_with_the_journalctl_hint_and_doctor_says_how_to_start_it(installed_system):
    c = installed_system
    c.systemctl("stop", product.UNIT, check=True)
    verify = c.exec([CLI, "verify"], check=False)
    assert verify.rc == 1
    assert "journalctl -u hailo-ollama.service -n 100 --no-pager" in verify.stderr
    result = doctor(c)
    assert result["code"] == 1
    assert result["checks"]["unit"]["status"] == "fail"
    assert "systemctl enable --now hailo-ollama.service" in result["checks"]["unit"]["fix"]
    assert result["checks"]["api"]["status"] == "fail"


def test_a_missing_device_node_is_a_doctor_failure_with_the_driver_fix(installed_system):
    c = installed_system
    c.remove_device("/dev/hailo0")
    check = doctor(c)["checks"]["device"]
    assert check["status"] == "fail"
    assert "hailo-h10-all" in check["fix"]


def test_a_device_the_service_user_cannot_open_is_named_with_owner_and_mode(installed_system):
    c = installed_system
    c.add_device("/dev/hailo0", mode="0600")
    check = doctor(c)["checks"]["device"]
    assert check["status"] == "fail"
    assert "root:root crw-------" in check["found"] and "cannot open it" in check["found"]


def test_a_port_taken_by_another_program_is_named_with_the_fix(installed_system):
    c = installed_system
    c.systemctl("stop", product.UNIT, check=True)
    c.exec(["systemd-run", "--unit=ollama", "python3", "-m", "http.server", "--bind", "0.0.0.0",
            str(product.PORT)], check=True)
    try:
        assert product.wait_for(lambda: c.exec(["ss", "-ltn", f"sport = :{product.PORT}"],
                                               check=False).stdout.count("LISTEN"), 20)
        check = doctor(c)["checks"]["port"]
        assert check["status"] == "fail"
        assert "python3" in check["found"] and "ollama.service" in check["found"]
        assert "sudo systemctl disable --now ollama.service" in check["fix"]
    finally:
        c.systemctl("stop", "ollama.service")


def test_a_broken_config_is_a_doctor_failure_naming_file_line_and_key(installed_system, shipped_conffile):
    c = installed_system
    product.write_conffile(c, shipped_conffile + "\nserver:\n  port: 70000\n")
    product.settle(c)
    result = doctor(c)
    check = result["checks"]["settings"]
    assert check["status"] == "fail"
    assert "/etc/hailo/hailo-ollama.yaml:" in check["found"] and "server.port" in check["found"]
    assert result["checks"]["api"]["status"] == "ok"  # still serving the last good configuration


def test_doctor_with_the_api_down_finishes_within_five_seconds(installed_system):
    c = installed_system
    c.systemctl("stop", product.UNIT, check=True)
    timed = f"start=$(date +%s%N); {CLI} doctor >/dev/null; echo $(( ($(date +%s%N) - start) / 1000000 ))"
    r = c.exec(["sh", "-c", timed],
               check=False)
    assert int(r.stdout.strip().splitlines()[-1]) < 5000


def test_wait_ready_exits_0_on_the_running_service_and_1_when_it_is_stopped(installed_system):
    c = installed_system
    assert c.exec([CLI, "wait-ready", "--timeout", "10"], check=False).rc == 0
    c.systemctl("stop", product.UNIT, check=True)
    r = c.exec([CLI, "wait-ready", "--timeout", "2"], check=False)
    assert r.rc == 1 and "no answer from http://127.0.0.1:11434/api/version" in r.stderr


def test_pull_prints_progress_lines_and_lands_the_blob(installed_system, shipped_conffile):
    c = installed_system
    # No internet in the container: the stand-in package's HTTPS model
    # library (self-signed) on loopback plays the library.
    product.start_standin_library(c, 8443)
    try:
        product.write_conffile(c, shipped_conffile + "\nlibrary:\n  host: 127.0.0.1\n  port: 8443\n")
        product.settle(c)
        assert product.wait_answering(c, timeout=60)
        c.exec(["sh", "-c", f"rm -f {product.BLOB}/sha256_*"])
        r = c.exec([CLI, "pull", "llama3.2:3b"], check=False, timeout=300)
        assert r.rc == 0, r.output
        lines = r.stdout.splitlines()
        assert lines[0] == "downloading llama3.2:3b from library 127.0.0.1:8443"
        assert any("100.0%" in line for line in lines) and lines[-1] == "success"
        assert "llama3.2:3b" in product.tag_names(c)
    finally:
        c.systemctl("stop", "standin-library.service")


def test_pull_of_an_unknown_model_or_with_the_library_unreachable_says_why(installed_system):
    c = installed_system
    unknown = c.exec([CLI, "pull", "nosuch:1b"], check=False)
    assert unknown.rc == 1 and "nosuch:1b: not offered by this server; it offers:" in unknown.stderr
    # The test container has no DNS: the real library cannot be reached, and
    # the server must not be asked (a streaming pull would kill upstream 5.1).
    pid = product.main_pid(c)
    down = c.exec([CLI, "pull", "qwen2:1.5b"], check=False)
    assert down.rc == 1 and "model library is unreachable" in down.stderr
    assert product.main_pid(c) == pid and product.answers(c)
