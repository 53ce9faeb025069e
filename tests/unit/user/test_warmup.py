"""Tests of user/warmup.py against a fake API on loopback."""

from __future__ import annotations

import socket

from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.user import warmup


def values(port: int, model: str) -> dict:
    return dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": port, "warmup.model": model})


def test_no_warmup_model_means_nothing_is_asked(fake_api):
    lines = []
    assert warmup.run(values(fake_api.port, ""), lines.append) == 0
    assert fake_api.requests == [] and "nothing to do" in lines[0]


def test_a_missing_model_is_pulled_without_streaming_then_loaded(fake_api):
    lines = []
    assert warmup.run(values(fake_api.port, "qwen2:1.5b"), lines.append) == 0
    posts = [(path, body) for method, path, body in fake_api.requests if method == "POST"]
    assert posts[0] == ("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert posts[1][0] == "/api/chat" and posts[1][1]["model"] == "qwen2:1.5b"
    assert lines[-1] == "warmup: qwen2:1.5b is loaded"


def test_a_present_model_is_not_pulled_again(fake_api):
    fake_api.models.append("qwen2:1.5b")
    warmup.run(values(fake_api.port, "qwen2:1.5b"), lambda _l: None)
    assert [p for m, p, _b in fake_api.requests if m == "POST"] == ["/api/chat"]


def test_a_failed_pull_is_logged_and_still_exits_0(fake_api):
    fake_api.pull_status = 500
    lines = []
    assert warmup.run(values(fake_api.port, "qwen2:1.5b"), lines.append) == 0
    assert "pull of qwen2:1.5b failed: HTTP 500" in lines[-1]
    assert [p for m, p, _b in fake_api.requests if m == "POST"] == ["/api/pull"]


def test_a_failed_load_is_logged_and_still_exits_0(fake_api):
    fake_api.models.append("qwen2:1.5b")
    fake_api.chat_status = 500
    lines = []
    assert warmup.run(values(fake_api.port, "qwen2:1.5b"), lines.append) == 0
    assert "loading qwen2:1.5b failed: HTTP 500" in lines[-1]


def test_an_api_that_is_down_is_skipped(monkeypatch):
    monkeypatch.setattr(warmup.api, "wait_ready", lambda *a, **k: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lines = []
    assert warmup.run(values(port, "qwen2:1.5b"), lines.append) == 0
    assert "does not answer" in lines[-1]


def test_a_failed_load_is_followed_by_an_unload_so_the_server_survives_the_next_request(fake_api):
    fake_api.models.append("qwen2:1.5b")
    fake_api.chat_status = 500
    warmup.run(values(fake_api.port, "qwen2:1.5b"), lambda _l: None)
    assert fake_api.requests[-1] == ("POST", "/api/generate",
                                     {"model": "qwen2:1.5b", "keep_alive": 0, "stream": False})


def test_a_proxy_in_the_environment_is_not_used_for_the_local_server(fake_api, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    lines = []
    warmup.run(values(fake_api.port, "qwen2:1.5b"), lines.append)
    assert lines[-1] == "warmup: qwen2:1.5b is loaded"


def test_an_endless_pull_answer_is_cut_at_its_cap_and_logged_in_one_line():
    from hostile import Hostile, endless, reply
    server = Hostile({"/api/version": reply(200, {"version": "0.5.1"}), "/api/tags": reply(200, {"models": []}),
                      "POST /api/pull": endless(b"HTTP/1.1 200 OK\r\n\r\n", b"\x1b[2J" * 16384)})
    try:
        lines = []
        assert warmup.run(values(server.port, "qwen2:1.5b"), lines.append) == 0
        assert lines[-1] == f"warmup: http://127.0.0.1:{server.port}/api/pull: answer over 1048576 bytes"
    finally:
        server.close()


def test_a_failed_pull_shows_the_servers_answer_escaped():
    from hostile import Hostile, reply
    server = Hostile({"/api/version": reply(200, {"version": "0.5.1"}), "/api/tags": reply(200, {"models": []}),
                      "POST /api/pull": reply(500, b"code=500\n  - Can't connect\x1b]0;owned\x07\n", "text/plain")})
    try:
        lines = []
        warmup.run(values(server.port, "qwen2:1.5b"), lines.append)
        assert lines[-1] == ("warmup: pull of qwen2:1.5b failed: HTTP 500 "
                             "code=500\\x0a  - Can't connect\\x1b]0;owned\\x07")
    finally:
        server.close()


LIST_54 = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]


def server_54(hostile):
    from hostile import reply
    return hostile({"/api/version": reply(200, {"version": "0.5.1"}), "/api/tags": reply(200, {"models": []}),
                    "/hailo/v1/list": reply(200, {"models": LIST_54})})


def test_a_warmup_model_named_for_5_1_on_a_5_4_server_logs_did_you_mean_and_pulls_nothing(hostile):
    server = server_54(hostile)
    lines = []
    assert warmup.run(values(server.port, "qwen2.5-instruct:1.5b"), lines.append) == 0
    assert lines[-1] == ("warmup: qwen2.5-instruct:1.5b: not offered by this server; did you mean qwen2.5:1.5b? "
                         "(Hailo 5.2 renamed it); change warmup.model (hailo-ollama-service config shows where it "
                         "is set)")
    assert [m for m, _p, _h, _b in server.requests if m == "POST"] == []


def test_a_dropped_warmup_model_logs_what_the_server_offers_instead(hostile):
    server = server_54(hostile)
    lines = []
    warmup.run(values(server.port, "llama3.2:3b"), lines.append)
    assert lines[-1].startswith("warmup: llama3.2:3b: not offered by this server (Hailo 5.2 dropped it); "
                                "it offers: llama3.2:1b, ")


def test_a_server_without_a_model_list_is_still_asked_to_pull(fake_api):
    lines = []
    warmup.run(values(fake_api.port, "qwen2.5-instruct:1.5b"), lines.append)  # the fake API answers the list 404
    assert ("GET", "/hailo/v1/list", {}) in fake_api.requests
    assert lines[-1] == "warmup: qwen2.5-instruct:1.5b is loaded"
