"""Tests of user/serve.py: the unit's main process (the model step, then exec of the server).

serve refuses root, so the runs below stand in for the service user the way
test_cli's sync-models tests do: os.geteuid reports 1000 in the process that
runs serve (a subprocess here, since serve replaces itself with the server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hailo_ollama_service.user import serve

from unit_helpers import free_port, write

REPO = Path(__file__).resolve().parents[3]

FAKE_SERVER = r'''#!/usr/bin/python3
import http.server, json, os, sys, time
with open(os.environ["FAKE_RECORD"], "w") as out:
    json.dump({"pid": os.getpid(), "argv": sys.argv, "env": sorted(os.environ)}, out)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": "5.1.1"}).encode()
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["FAKE_PORT"])), Handler)
with open(os.environ["FAKE_RECORD"] + ".listening", "w") as out:
    out.write(str(time.monotonic()))
server.serve_forever()
'''

RUN_AS_SERVICE_USER = r'''
import os, sys
os.geteuid = lambda: 1000
from hailo_ollama_service.user import serve
sys.exit(serve.serve(sys.argv[1]))
'''


@pytest.fixture
def tree(tmp_path):
    write(tmp_path / "usr/share/hailo-ollama/models/manifests/qwen2/1.5b/manifest.json", "{}")
    (tmp_path / "var/lib/hailo-ollama").mkdir(parents=True)
    fake = write(tmp_path / "usr/bin/hailo-ollama", FAKE_SERVER)
    fake.chmod(0o755)
    return tmp_path


def start(root: Path, **env: str | None) -> subprocess.Popen:
    environ = dict(os.environ, PYTHONPATH=str(REPO), FAKE_RECORD=str(root / "record.json"),
                   OLLAMA_HOST="127.0.0.1:11434")
    environ.update(env)
    for name in [k for k, v in environ.items() if v is None]:
        del environ[name]
    return subprocess.Popen([sys.executable, "-c", RUN_AS_SERVICE_USER, str(root)],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_serve_syncs_the_models_then_becomes_the_server_with_its_environment(tree):
    proc = start(tree, FAKE_PORT=str(free_port()), HAILO_TEST_MARK="kept")
    try:
        assert wait_for(lambda: (tree / "record.json.listening").exists()), proc.stderr
        record = json.loads((tree / "record.json").read_text())
        # exec, not a child: the unit's main process ($MAINPID) is the server itself
        assert record["pid"] == proc.pid
        assert record["argv"] == [str(tree / "usr/bin/hailo-ollama")]
        assert "HAILO_TEST_MARK" in record["env"]
        assert (tree / "var/lib/hailo-ollama/models/manifests/qwen2/1.5b/manifest.json").exists()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"changed: {tree}/var/lib/hailo-ollama/models/manifests/qwen2/1.5b/manifest.json" in out
    assert err == ""


def test_serve_says_nothing_when_the_models_are_already_in_sync(tree):
    for _ in range(2):
        (tree / "record.json.listening").unlink(missing_ok=True)
        proc = start(tree, FAKE_PORT=str(free_port()))
        try:
            assert wait_for(lambda: (tree / "record.json.listening").exists())
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
    assert (out, err) == ("", "")


def test_serve_without_the_server_binary_fails_with_one_line(tree):
    (tree / "usr/bin/hailo-ollama").unlink()
    proc = start(tree)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err == (f"hailo-ollama-service: error: {tree}/usr/bin/hailo-ollama: No such file or directory "
                   "(is hailo-gen-ai-model-zoo installed?)\n")


def test_serve_with_a_link_in_the_model_tree_fails_before_starting_the_server(tree):
    (tree / "var/lib/hailo-ollama/models").symlink_to(tree)
    proc = start(tree, FAKE_PORT=str(free_port()))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and not (tree / "record.json").exists()
    assert err.count("\n") == 1 and "models: a symbolic link or not a directory; refusing to use it" in err


def test_serve_refuses_to_run_as_root(tree, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert serve.serve(str(tree)) == 1
    assert capsys.readouterr().err == ("hailo-ollama-service: error: serve runs as the service user "
                                       "(hailo-ollama.service's ExecStart=), not as root\n")
    assert not (tree / "var/lib/hailo-ollama/models").exists()


@pytest.mark.parametrize("value", [None, "", "http://127.0.0.1:11434", "127.0.0.1", "0.0.0.0:0", "[::1]",
                                   "127.0.0.1:11434\n", "host name:1"])
def test_serve_refuses_an_ollama_host_that_upstream_would_replace_with_0_0_0_0_8000(tree, value):
    proc = start(tree, FAKE_PORT=str(free_port()), OLLAMA_HOST=value)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and not (tree / "record.json").exists()
    assert err.count("\n") == 1 and "OLLAMA_HOST" in err and "0.0.0.0:8000" in err, err


@pytest.mark.parametrize("value", ["127.0.0.1:11434", "0.0.0.0:11500", "[::]:11434", "[::1]:8080", "pi5.lan:11434"])
def test_every_address_the_renderer_writes_passes_the_listen_check(value):
    assert serve.check_listen_address(value) is None


# ---------------------------------------------------------------- the kiosk allowlist ($HAILO_OLLAMA_SERVICE_MODELS)
@pytest.mark.parametrize("value", ["qwen2 1.5b", "qwen2, llama3.2", "qwen2,,llama3.2", "qwen2,", ",qwen2",
                                   "qwen2:1.5b:x", "qwen2:", ":1.5b", "-qwen2", "qwen2:_x", "qwén2", "qwen2\n",
                                   "a" * 129, "qwen2:" + "a" * 65, "qwen2;rm"])
def test_serve_refuses_an_allowlist_it_cannot_read_before_touching_the_models(tree, monkeypatch, capsys, value):
    monkeypatch.setattr(serve.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(serve.os, "execve", lambda *a: pytest.fail("serve started the server"))
    environ = {"OLLAMA_HOST": "127.0.0.1:11434", "HAILO_OLLAMA_SERVICE_MODELS": value}
    assert serve.serve(str(tree), environ) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hailo-ollama-service: error: HAILO_OLLAMA_SERVICE_MODELS=")
    assert "not starting" in err
    assert not (tree / "var/lib/hailo-ollama/models").exists()


@pytest.mark.parametrize("value, names", [(None, []), ("", []), ("qwen2", ["qwen2"]),
                                          ("qwen2:1.5b,llama3.2", ["qwen2:1.5b", "llama3.2"]),
                                          ("library/qwen2:latest", ["library/qwen2:latest"])])
def test_every_allowlist_the_renderer_writes_is_read_as_its_names(value, names):
    assert serve.allowed_models(value) == (names, None)


@pytest.mark.parametrize("name", ["qwen2", "qwen2:1.5b", "llama3.2:latest", "deepseek_r1_distill_qwen:1.5b",
                                  "a/b-c.d:e_f.g-h", "a" * 128, "a" * 129, "q:" + "t" * 64, "q:" + "t" * 65,
                                  ":", "q:", ":t", "_q", ".q", "q:-t", "q:t/u", "q:t:u", "q t", "qwé", "q\n",
                                  "Q2:B", "q;x", "q,x"])
def test_serves_name_check_agrees_with_the_settings_check(name):
    from hailo_ollama_service.config import schema
    try:
        schema.check_model(name)  # the settings' pattern (_MODEL) for one name
        valid = True
    except schema.SettingError:
        valid = False
    assert serve.valid_model(name) == valid


def test_serve_mirrors_only_allowed_models_and_syncs_again_when_the_allowlist_changes(tree):
    write(tree / "usr/share/hailo-ollama/models/manifests/llama3.2/3b/manifest.json", "{}")
    manifests = tree / "var/lib/hailo-ollama/models/manifests"
    outs = []
    for value in ("llama3.2", "qwen2:1.5b"):
        (tree / "record.json.listening").unlink(missing_ok=True)
        proc = start(tree, FAKE_PORT=str(free_port()), HAILO_OLLAMA_SERVICE_MODELS=value)
        try:
            assert wait_for(lambda: (tree / "record.json.listening").exists()), proc.stderr
            shown = sorted(str(p.relative_to(manifests)) for p in manifests.rglob("manifest.json"))
            assert shown == [f"{value.split(':')[0]}/{'3b' if value == 'llama3.2' else '1.5b'}/manifest.json"]
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
        outs.append((out, err))
    assert f"changed: {manifests}/qwen2/1.5b/manifest.json" in outs[1][0]
    assert f"changed: {manifests}/llama3.2/3b/manifest.json" in outs[1][0]  # removed


def test_serves_sync_fast_path_is_taken_only_while_the_allowlist_is_the_stamped_one(tree, later, monkeypatch):
    from hailo_ollama_service.user import models
    monkeypatch.setattr(serve.os, "geteuid", lambda: 1000)
    write(tree / "usr/share/hailo-ollama/models/manifests/llama3.2/3b/manifest.json", "{}")
    manifests = tree / "var/lib/hailo-ollama/models/manifests"
    serve.sync_models(str(tree), ["llama3.2"])
    real = models.sync_here
    monkeypatch.setattr(models, "sync_here", lambda *a: pytest.fail("the fast path was not taken"))
    serve.sync_models(str(tree), ["llama3.2"])
    monkeypatch.setattr(models, "sync_here", real)
    serve.sync_models(str(tree), ["qwen2:1.5b"])
    assert sorted(str(p.relative_to(manifests)) for p in manifests.rglob("manifest.json")) == [
        "qwen2/1.5b/manifest.json"]
