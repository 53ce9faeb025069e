"""Tests of untrusted.py where it counts: what a hostile server says (its version, model names)
reaches no output raw.

The server is network-facing C++ that can be taken over; root runs doctor,
verify and postinst-report against it, and metrics-publish copies what the
collecting step made of it. A version holding an OSC title sequence, CSI
sequences and a bidi override must come out escaped everywhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hailo_ollama_service.cli import handlers
from hailo_ollama_service.cli import main as cli
from hailo_ollama_service.config import record
from hailo_ollama_service.host import doctor, metrics
from hailo_ollama_service.host.machine import Host
from hailo_ollama_service.root import publish

from proc_helpers import HOSTILE, SESSION_CGROUP, listen
from unit_helpers import write

SHOW = ("ActiveState=active\nSubState=running\nNRestarts=0\nExecMainStatus=0\nExecMainCode=0\n"
        "UnitFileState=enabled\nLoadState=loaded")
NAME = "qwen2\u00e9" + HOSTILE + ":1.5b"  # printable non-ASCII too
ESCAPED = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\u202e"  # HOSTILE as untrusted.shown writes it


class HostileApi:
    """An Ollama-like server on loopback whose version and model names hold terminal escapes.

    The version is sent raw inside the JSON string (what probe.version
    reads), the model names as valid JSON escapes (what a JSON parser decodes).
    """

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                models = [{"name": NAME, "model": NAME}]
                body = {"/api/version": b'{"version": "0.5.1' + HOSTILE.encode() + b'"}',
                        "/hailo/v1/list": json.dumps({"models": [NAME]}).encode(),
                        "/api/tags": json.dumps({"models": models}).encode(),
                        "/api/ps": json.dumps({"models": models}).encode()}.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *_args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile(paths, monkeypatch):
    """A HostileApi that the settings below ``paths`` point at; doctor's commands faked."""
    server = HostileApi()
    write(paths.conffile, f"server:\n  host: 127.0.0.1\n  port: {server.port}\n")
    identify = f"Device Architecture: HAILO10H{HOSTILE}\nFirmware Version: 5.1.1{HOSTILE}\n"
    table = {"dpkg-query -W": (0, "5.1.1" + HOSTILE), "systemctl show": (0, SHOW),
             "hailortcli fw-control": (0, identify)}
    host = Host(paths, run=lambda argv: table.get(" ".join(argv[:2]), (127, "not found")), is_root=True,
                api_timeout=2.0)
    monkeypatch.setattr(handlers, "_host", lambda _args: host)
    monkeypatch.delenv("HAILO_OLLAMA_CONFIG", raising=False)
    monkeypatch.delenv("HAILO_OLLAMA_DEBUG", raising=False)
    yield host
    server.close()


def raw(text: str) -> list[str]:
    """The characters of ``text`` that are not printable (line ends aside)."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def strings(doc: object) -> list[str]:
    """Every string in a decoded JSON document, keys included."""
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (k, *strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return [doc] if isinstance(doc, str) else []


def test_the_version_and_model_names_are_escaped_in_doctors_checks(paths, hostile):
    values = dict(record.served_values(paths))
    api_check, listed, pulled = doctor.check_api(hostile, values)
    assert api_check.status == "ok" and api_check.found.endswith(f"version 0.5.1{ESCAPED}")
    models = doctor.check_models(hostile, listed, pulled, True)
    assert models.status == "ok" and f"pulled: qwen2\u00e9{ESCAPED}:1.5b" in models.found
    firmware = doctor.check_firmware(hostile)
    assert firmware.found == f"HAILO10H{ESCAPED}, firmware 5.1.1{ESCAPED}"
    assert not raw(api_check.found + models.found + firmware.found)


def test_doctors_text_report_shows_the_hostile_values_escaped(paths, hostile, capsys):
    cli.main(["--root", str(paths.root), "doctor"])
    out, err = capsys.readouterr()
    assert f"version 0.5.1{ESCAPED}" in out and f"qwen2\u00e9{ESCAPED}:1.5b" in out
    assert not raw(out) and not raw(err)


def test_doctors_json_report_holds_no_control_character_in_any_string(paths, hostile, capsys):
    cli.main(["--root", str(paths.root), "doctor", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    found = strings(doc)
    assert any(f"version 0.5.1{ESCAPED}" in s for s in found)
    assert any(ESCAPED in s for s in strings(doc["stack"]))  # the firmware version the device reported
    assert not [s for s in found if raw(s)] and not raw(out) and not raw(err)


def test_verify_shows_the_hostile_version_escaped(paths, hostile, capsys):
    cli.main(["--root", str(paths.root), "verify"])
    out, err = capsys.readouterr()
    assert f"version 0.5.1{ESCAPED}" in out
    assert not raw(out) and not raw(err)


def test_postinst_report_shows_the_hostile_version_escaped(paths, hostile, capsys):
    assert cli.main(["--root", str(paths.root), "postinst-report", "--timeout", "5"]) == 0
    out, err = capsys.readouterr()
    assert f"(API version 0.5.1{ESCAPED})" in out
    assert not raw(out) and not raw(err)


def test_preflight_shows_a_port_holders_hostile_name_escaped(paths, monkeypatch, capsys):
    monkeypatch.delenv("HAILO_OLLAMA_CONFIG", raising=False)
    listen(paths.root, 11434, 77, 1000, SESSION_CGROUP, comm=HOSTILE + "ollama")
    assert cli.main(["--root", str(paths.root), "preflight"]) == 0
    out, err = capsys.readouterr()
    assert f"port 11434 is already in use by {ESCAPED}ollama (pid 77)" in err
    assert not raw(out) and not raw(err)


def test_a_hostile_model_name_and_version_cannot_make_publish_refuse_the_metrics(paths, hostile, tmp_path):
    text = metrics.exposition(metrics.collect(hostile))
    assert all(" " <= c <= "~" for line in text.splitlines() for c in line)
    assert 'hailo_ollama_model_loaded{model="qwen2\\\\xe9\\\\x1b]0;pwned\\\\x07' in text
    assert 'upstream_version="5.1.1\\\\x1b]0;pwned' in text
    if shutil.which("promtool"):  # and Prometheus reads it
        done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    source = write(tmp_path / "run/hailo-ollama.prom", text)
    target = tmp_path / "textfile"
    target.mkdir()
    assert publish.publish(source, target)
    assert (target / "hailo-ollama.prom").read_text() == text
