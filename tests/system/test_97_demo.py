"""make demo / make demo-stop (issue 6): the newcomer's two commands."""

import json
import os
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

import harness
import product

pytestmark = pytest.mark.system


def port_open(port: int = 11434) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def demo_slot():
    """The host's port 11434 and demo state, one suite at a time (make check
    runs the releases' suites at once)."""
    with harness.host_lock("demo"):
        yield


def test_make_demo_leaves_the_api_answering_and_make_demo_stop_leaves_nothing_running(base_root, demo_slot):
    """`make demo` on trixie (its default) and `make demo SUITE=bookworm`."""
    if port_open():
        pytest.fail("port 11434 is already in use on this machine; the demo needs it", pytrace=False)
    cmd = ["make", "-C", str(product.REPO), "demo"]
    if harness.SUITE != "trixie":
        cmd.append(f"SUITE={harness.SUITE}")
    env = {k: v for k, v in os.environ.items() if k != "HOS_SUITE"}  # the default must be trixie
    up = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        assert "curl http://127.0.0.1:11434/api/version" in up.stdout
        with urllib.request.urlopen("http://127.0.0.1:11434/api/version", timeout=10) as reply:
            assert json.loads(reply.read()) == {"version": "0.5.1"}
        state = json.loads((harness.CACHE_DIR / "demo.json").read_text())
        os_release = (Path(state["run_dir"]) / "root/etc/os-release").read_text()
        assert f"VERSION_CODENAME={harness.SUITE}" in os_release, os_release
        assert f"Debian {harness.SUITE}" in up.stdout
        # Pulls work offline (the README's sentence): the container has no
        # name server, and the library is the stand-in's on 127.0.0.1.
        resolv = (Path(state["run_dir"]) / "root/etc/resolv.conf").read_text()
        assert "nameserver" not in resolv, resolv
        port = state["library_port"]
        assert f"127.0.0.1:{port}" in up.stdout
        pull = subprocess.run(["nsenter", "-t", str(state["init_pid"]), "-a", "hailo-ollama-service", "pull",
                               "qwen2:1.5b"], capture_output=True, text=True, timeout=300)
        assert pull.returncode == 0, pull.stdout[-2000:] + pull.stderr[-2000:]
        lines = pull.stdout.splitlines()
        assert lines[0] == f"downloading qwen2:1.5b from library 127.0.0.1:{port}", lines[:3]
        assert lines[-1] == "success", lines[-3:]
        with urllib.request.urlopen("http://127.0.0.1:11434/api/tags", timeout=10) as reply:
            assert "qwen2:1.5b" in {m["name"] for m in json.loads(reply.read())["models"]}
    finally:
        down = subprocess.run(["make", "-C", str(product.REPO), "demo-stop"], capture_output=True, text=True,
                              timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (harness.CACHE_DIR / "demo.json").exists()
    assert not port_open()
    assert subprocess.run(["pgrep", "-f", f"systemd-nspawn -D {state['run_dir']}"]).returncode == 1
    assert not Path(state["run_dir"]).exists()
