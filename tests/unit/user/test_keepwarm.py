"""Tests of user/keepwarm.py against the stand-in server and a fake API on loopback."""

from __future__ import annotations

import io
import os
import socket
import time

from hailo_ollama_service.client import api, pull
from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.user import keepwarm


def values(port: int, model: str = "qwen2:1.5b", keep: bool = True) -> dict:
    return dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": port, "warmup.model": model,
                             "warmup.keep_loaded": keep})


def pulled(server, model="qwen2:1.5b"):
    pull.pull(server.values(), model, pull.Progress(io.StringIO(), False), reachable=lambda h, p: None)


def loaded(server) -> list:
    return api.get_json("127.0.0.1", server.port, "/api/ps", 5)[1]["models"]


def test_with_the_setting_off_nothing_is_asked(fake_api, tmp_path):
    lines = []
    assert keepwarm.run(values(fake_api.port, keep=False), lines.append, tmp_path / "state") == 0
    assert fake_api.requests == [] and "nothing to keep loaded" in lines[0]


def test_the_model_is_loaded_for_good_and_that_is_logged_once(standin_with_device, tmp_path):
    pulled(standin_with_device)
    lines = []
    for _ in range(3):
        assert keepwarm.run(values(standin_with_device.port), lines.append, tmp_path / "state") == 0
    assert lines == ["keep-warm: qwen2:1.5b is loaded and kept loaded (keep_alive -1)"]
    models = loaded(standin_with_device)
    assert [m["name"] for m in models] == ["qwen2:1.5b"]
    # keep_alive -1: never expires; the real 5.1.1 server shows that as an expiry
    # before 1970 (a default load would expire in 5 minutes)
    assert models[0].get("expires_at", "")[:4] < "1970", models[0]


def test_a_model_not_downloaded_is_not_pulled_and_is_logged_once(standin_with_device, tmp_path):
    lines = []
    for _ in range(2):
        keepwarm.run(values(standin_with_device.port), lines.append, tmp_path / "state")
    assert len(lines) == 1 and "qwen2:1.5b is not downloaded yet" in lines[0]
    assert loaded(standin_with_device) == []


def test_a_failed_load_is_unloaded_logged_once_and_backed_off(standin, tmp_path):
    pulled(standin)
    lines = []
    now = [1000.0]
    assert keepwarm.run(values(standin.port), lines.append, tmp_path / "state", clock=lambda: now[0]) == 0
    assert len(lines) == 1 and "loading qwen2:1.5b failed: HTTP 500" in lines[0] and "30 minutes" in lines[0]
    assert loaded(standin) == []  # unloaded: upstream crashes on the next request otherwise
    assert standin.alive()
    now[0] += 60
    assert keepwarm.run(values(standin.port), lines.append, tmp_path / "state", clock=lambda: now[0]) == 0
    now[0] += keepwarm.BACKOFF
    assert keepwarm.run(values(standin.port), lines.append, tmp_path / "state", clock=lambda: now[0]) == 0
    assert len(lines) == 1 and standin.alive()


def test_within_the_back_off_no_request_is_made(fake_api, tmp_path):
    fake_api.models.append("qwen2:1.5b")  # FakeApi answers 404 to /api/generate: a failed load
    keepwarm.run(values(fake_api.port), lambda _l: None, tmp_path / "state", clock=lambda: 5000.0)
    count = len(fake_api.requests)
    keepwarm.run(values(fake_api.port), lambda _l: None, tmp_path / "state", clock=lambda: 5100.0)
    assert len(fake_api.requests) == count


def test_a_server_that_does_not_answer_is_logged_once(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lines = []
    for _ in range(2):
        assert keepwarm.run(values(port), lines.append, tmp_path / "state") == 0
    assert len(lines) == 1 and "does not answer" in lines[0]


def test_a_fifo_or_a_link_as_the_state_file_neither_blocks_nor_is_followed(fake_api, tmp_path):
    os.mkfifo(tmp_path / "state")
    assert keepwarm.read_state(tmp_path / "state") == {}
    (tmp_path / "state").unlink()
    (tmp_path / "elsewhere").write_text('{"failed_at": 1e12}')
    (tmp_path / "state").symlink_to(tmp_path / "elsewhere")
    assert keepwarm.read_state(tmp_path / "state") == {}


def test_a_load_that_drips_past_its_deadline_is_logged_as_busy(monkeypatch, tmp_path):
    from hostile import Hostile, drip, reply
    monkeypatch.setattr(keepwarm, "LOAD_TIMEOUT", 0.4)
    server = Hostile({"/api/version": reply(200, {"version": "0.5.1"}),
                      "/api/tags": reply(200, {"models": [{"name": "qwen2:1.5b"}]}),
                      "POST /api/generate": drip(reply(200, {"done": True}) + b" " * 1000, 0.05)})
    try:
        lines = []
        start = time.monotonic()
        assert keepwarm.run(values(server.port), lines.append, tmp_path / "state") == 0
        assert time.monotonic() - start < 1.5
        assert lines == [f"keep-warm: http://127.0.0.1:{server.port} was busy for over 0.4 s (a long generation?); "
                         "trying again at the next run"]
    finally:
        server.close()


def test_a_failed_load_shows_the_servers_answer_escaped(tmp_path):
    from hostile import Hostile, reply
    server = Hostile({"/api/version": reply(200, {"version": "0.5.1"}),
                      "/api/tags": reply(200, {"models": [{"name": "qwen2:1.5b"}]}),
                      "POST /api/generate": reply(500, b"\x1b[31mHAILO_OUT_OF_PHYSICAL_DEVICES\x1b[0m" * 50,
                                                  "text/plain")})
    try:
        lines = []
        keepwarm.run(values(server.port), lines.append, tmp_path / "state")
        assert lines[0].startswith("keep-warm: loading qwen2:1.5b failed: HTTP 500 "
                                   "\\x1b[31mHAILO_OUT_OF_PHYSICAL_DEVICES\\x1b[0m")
        assert "\x1b" not in lines[0] and len(lines[0]) < 400
    finally:
        server.close()


def test_a_warmup_model_named_for_5_4_on_a_5_1_server_is_logged_once_with_did_you_mean(standin, tmp_path):
    lines = []
    for _ in range(3):
        assert keepwarm.run(values(standin.port, model="qwen2.5:1.5b"), lines.append, tmp_path / "state") == 0
    assert lines == ["keep-warm: qwen2.5:1.5b: not offered by this server; did you mean qwen2.5-instruct:1.5b? "
                     "(its name before Hailo 5.2); change warmup.model (hailo-ollama-service config shows where "
                     "it is set)"]
    assert loaded(standin) == []


def test_a_hostile_model_list_reaches_the_keep_warm_log_escaped(hostile, tmp_path):
    from hostile import reply
    server = hostile({"/api/version": reply(200, {"version": "0.5.1"}), "/api/tags": reply(200, {"models": []}),
                      "/hailo/v1/list": reply(200, {"models": ["qwen2\x1b[2J:1.5b\u202e"]})})
    lines = []
    keepwarm.run(values(server.port, model="qwen2:1.5b"), lines.append, tmp_path / "state")
    assert len(lines) == 1 and lines[0].startswith("keep-warm: qwen2:1.5b: not offered by this server; did you mean "
                                                   "qwen2\\x1b[2J:1.5b\\u202e?")
    assert [m for m, _p, _h, _b in server.requests if m == "POST"] == []
