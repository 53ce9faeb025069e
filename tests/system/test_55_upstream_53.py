"""Life cycle 9: upstream in 5.3 mode takes the port from the rendered env file."""

import time

import pytest

import product

pytestmark = pytest.mark.system


def test_in_53_mode_the_server_listens_on_the_configured_port_through_the_env_file(
        installed_system, shipped_conffile, model):
    c = installed_system
    port = 11507
    product.write_conffile(c, product.port_config(port, shipped_conffile), how="cp")
    assert product.wait_answering(c, port, timeout=30)
    try:
        product.standin_mode(c, "5.3")
        r = c.systemctl("restart", product.UNIT, timeout=120)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, port, timeout=30), "5.3 server not answering on the port"
        env = c.read_file(product.ENV_FILE)
        assert f"OLLAMA_HOST=0.0.0.0:{port}" in env.replace('"', ""), env
        pid = product.main_pid(c)
        environ = c.exec(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
        assert f"OLLAMA_HOST=0.0.0.0:{port}" in environ, environ
        assert product.listed_models(c, port=port) == product.shipped_models(c)
        # the device of the 5.3 driver
        product.ensure_pulled(c, model, port=port)
        c.add_device("/dev/h1x-0")
        status, body = product.api(c, "POST", "/api/chat", port=port, body={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200, body
    finally:
        product.unload(c, model, port=port)
        c.remove_device("/dev/h1x-0")
        product.standin_mode(c, None)
        c.systemctl("restart", product.UNIT, timeout=120)


LISTENERS = r"""
import sys
for name in ("tcp", "tcp6"):
    for line in open("/proc/net/" + name).read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A":
            addr, port = f[1].rsplit(":", 1)
            print(addr, int(port, 16))
"""
FAIL_CLOSED_DROPIN = "/etc/systemd/system/hailo-ollama.service.d/95-hos-test-fail-closed.conf"


def _ports(c) -> "set[tuple[str, int]]":
    out = c.exec(["python3", "-c", LISTENERS]).stdout.split("\n")
    return {(line.split()[0], int(line.split()[1])) for line in out if line.strip()}


def _start_without_render(c, extra: str) -> None:
    """Restart the unit with no render before it (a first start, a failed
    render) and no environment file, plus EXTRA lines of [Service]."""
    c.write_file(FAIL_CLOSED_DROPIN, f"[Service]\nExecStartPre=\n{extra}")
    c.exec(["rm", "-f", product.ENV_FILE])
    c.systemctl("daemon-reload", check=True)
    c.systemctl("restart", product.UNIT, timeout=120)


def test_in_53_mode_no_start_listens_on_8000_whatever_the_environment_file_says(installed_system):
    c = installed_system
    product.standin_mode(c, "5.3")
    try:
        # the hazard is real: upstream 5.3 (and the stand-in) without OLLAMA_HOST listens on 0.0.0.0:8000
        c.exec(["sh", "-c", "cd /tmp && (timeout 4 env -u OLLAMA_HOST /usr/bin/hailo-ollama >/dev/null 2>&1 &) "
                "&& sleep 2"])
        assert ("00000000", 8000) in _ports(c), _ports(c)
        product.wait_for(lambda: ("00000000", 8000) not in _ports(c), 10)
        # no render, no environment file: the unit's own loopback value
        _start_without_render(c, "")
        assert product.wait_answering(c, inside=True, timeout=60), c.diagnostics()
        ports = _ports(c)
        assert ("0100007F", product.PORT) in ports and ("00000000", product.PORT) not in ports, ports
        assert all(port != 8000 for _a, port in ports), ports
        # an empty or invalid OLLAMA_HOST: serve refuses to start the server
        for bad in ("OLLAMA_HOST=", "OLLAMA_HOST=http://0.0.0.0:11434"):
            since = c.now()
            _start_without_render(c, f"Environment={bad}\n")
            time.sleep(3)
            assert all(port not in (8000, product.PORT) for _a, port in _ports(c)), (bad, _ports(c))
            journal = product.journal_text(c, since=since, unit=product.UNIT)
            assert "OLLAMA_HOST" in journal and "not starting" in journal, journal
    finally:
        c.exec(["rm", "-f", FAIL_CLOSED_DROPIN])
        product.standin_mode(c, None)
        c.systemctl("daemon-reload")
        c.systemctl("reset-failed", product.UNIT)
        c.systemctl("restart", product.UNIT, timeout=120)
        assert product.wait_answering(c, timeout=60), c.diagnostics()
