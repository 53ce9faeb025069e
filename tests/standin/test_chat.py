"""Chat, generate and OpenAI chat completions on a 5.1 stand-in: the VDevice failure without a device (status
74, the model shown as loaded, the crash on a second generation), the device node, the canned streamed
answer and its NDJSON framing, load/unload, keep_alive and one generation at a time.

README.md: "Checked against the real 5.1.1 server" (No device, keep_alive, final lines, completions).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import time
from collections.abc import Callable

import pytest
import requests

from standin_helpers import (
    CHAT,
    SEGFAULT,
    Layout,
    Standin,
    dechunk,
    eventually,
    ndjson,
    raw_http,
)


# ---------------------------------------------------------------- device and generation
def test_without_a_device_chat_fails_with_status_74_and_the_model_shows_as_loaded(
        layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    response = server.post("/api/chat", CHAT)
    assert response.status_code == 500
    assert "  - Expected::expect() failed with status=74. Failed to create VDevice\n" in response.text
    assert eventually(lambda: "HAILO_OUT_OF_PHYSICAL_DEVICES(74)" in server.err)
    assert "[HailoRT] [error] CHECK_SUCCESS failed with status=HAILO_OUT_OF_PHYSICAL_DEVICES(74)" in server.err
    assert "Failed to create vdevice. there are not enough free devices. requested: 1, found: 0" in server.err
    ps = server.get("/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["qwen2:1.5b"]
    expires = datetime.datetime.fromisoformat(ps[0]["expires_at"].rstrip("Z")[:26])
    left = (expires - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds()
    assert 290 < left < 301  # 5 minutes from the request
    assert server.get("/api/version").status_code == 200


def test_a_load_request_after_a_vdevice_failure_answers_load_without_crashing(
        layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/chat", CHAT).status_code == 500
    load = server.post("/api/chat", {"model": "qwen2:1.5b"}).json()
    assert (load["done_reason"], load["message"]) == ("load", {"role": "assistant", "content": ""})
    assert server.alive()


def test_an_unload_with_nothing_loaded_still_answers_unload(server: Standin, layout: Layout) -> None:
    layout.put_blob("qwen2:1.5b")
    body = server.post("/api/generate", {"model": "qwen2:1.5b", "keep_alive": 0}).json()
    assert list(body) == ["model", "created_at", "response", "done", "done_reason"]
    assert (body["response"], body["done"], body["done_reason"]) == ("", True, "unload")
    assert eventually(lambda: "generation_context:reset issued" in server.out)


def test_a_model_kept_forever_shows_the_overflowed_expiry_upstream_prints(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/chat", {**CHAT, "keep_alive": -1}).status_code == 500
    expires = server.get("/api/ps").json()["models"][0]["expires_at"]
    assert int(expires[:4]) < 1970 and ".-" in expires and expires.endswith("Z")  # time_point::max() wrapped


@pytest.mark.parametrize("second", ["/api/chat", "/api/generate"])
def test_a_second_request_after_a_vdevice_failure_crashes_the_server(
        layout: Layout, server: Standin, second: str) -> None:
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi"}).status_code == 500
    with pytest.raises(requests.exceptions.ConnectionError):
        server.post(second, {**CHAT, "prompt": "hi"})
    assert server.wait_exit() == SEGFAULT


def test_an_unload_between_vdevice_failures_prevents_the_crash(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/chat", CHAT).status_code == 500
    unload = server.post("/api/chat", {"model": "qwen2:1.5b", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and unload["done"] is True
    assert server.get("/api/ps").json() == {"models": []}
    assert server.post("/api/chat", CHAT).status_code == 500
    assert server.alive()


def test_a_device_node_that_cannot_be_opened_is_not_usable(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").mkdir()  # exists, but open(O_RDWR) fails even for root
    assert server.post("/api/chat", CHAT).status_code == 500


def test_a_device_held_by_another_program_is_not_usable(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    node = layout.dev / "hailo0"
    node.touch()
    with open(node, "r+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert server.post("/api/chat", CHAT).status_code == 500


def test_the_device_is_opened_lazily_and_chat_streams_a_canned_answer(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()  # appears after the server started
    lines = ndjson(server.post("/api/chat", CHAT, stream=True))
    assert len(lines) > 2 and all(line["done"] is False for line in lines[:-1])
    text = "".join(line["message"]["content"] for line in lines)
    assert "stand-in" in text
    last = lines[-1]
    assert list(last) == ["model", "created_at", "message", "done", "done_reason", "total_duration", "eval_count"]
    assert last["done"] is True and last["done_reason"] == "stop" and last["message"]["content"] == ""
    assert last["eval_count"] == len(lines) - 1
    assert isinstance(last["total_duration"], int) and last["total_duration"] > 0
    assert eventually(lambda: "GenerationThread:replacing model to " in server.out)
    assert "handle_completion:Got model " in server.out
    ps = server.get("/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["qwen2:1.5b"] and ps[0]["expires_at"].endswith("Z")


def test_generate_streams_by_default_and_answers_one_object_without_stream(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    lines = ndjson(server.post("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi"}))
    assert "".join(line["response"] for line in lines).endswith("stand-in.")
    response = server.post("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi", "stream": False})
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["done"] is True and body["response"].endswith("stand-in.") and body["eval_count"] > 0
    assert "load_duration" not in body and "eval_duration" not in body  # upstream never fills them


def test_chat_without_messages_loads_the_model(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    body = server.post("/api/chat", {"model": "qwen2:1.5b"}).json()
    assert body["done_reason"] == "load"
    assert [m["name"] for m in server.get("/api/ps").json()["models"]] == ["qwen2:1.5b"]


def test_keep_alive_seconds_expire_the_loaded_model(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    server.post("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi", "stream": False, "keep_alive": 1})
    assert server.get("/api/ps").json()["models"]
    time.sleep(1.3)
    assert server.get("/api/ps").json() == {"models": []}


def test_the_default_keep_alive_is_a_test_knob_and_a_negative_one_never_unloads(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    standin = run({"HAILO_STANDIN_DEFAULT_KEEP_ALIVE": "1"})
    standin.post("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi", "stream": False})
    time.sleep(1.3)
    assert standin.get("/api/ps").json() == {"models": []}
    load = standin.post("/api/generate", {"model": "qwen2:1.5b", "keep_alive": -1}).json()
    assert load["done_reason"] == "load"
    time.sleep(1.3)
    assert [m["name"] for m in standin.get("/api/ps").json()["models"]] == ["qwen2:1.5b"]


def test_chat_and_generate_of_an_unknown_model_answer_200_with_an_error_in_5_1(server: Standin) -> None:
    for path, body in (("/api/chat", {**CHAT, "model": "nope:1b"}),
                       ("/api/generate", {"model": "nope:1b", "prompt": "hi"}),
                       ("/v1/chat/completions", {**CHAT, "model": "nope:1b"}),
                       ("/api/chat", CHAT)):  # a known model whose blob was never pulled
        response = server.post(path, body)
        assert response.status_code == 200, path
        assert response.json() == {"error": f"model '{body['model']}' not found"}


def test_openai_chat_completions_answers_once_and_refuses_with_200_in_5_1(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    body = server.post("/v1/chat/completions", CHAT).json()
    assert list(body) == ["id", "object", "created", "model", "choices"]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["created"] > 10 ** 18  # nanoseconds since the epoch, as upstream
    assert body["choices"][0]["message"]["content"].endswith("stand-in.")
    streaming = "streaming not supported on this endpoint. Use /api/chat endpoint instead."
    for extra, error in (({"stream": True}, streaming),
                         ({"n": 2}, "only n == 1 is supported"), ({"messages": None}, "messages field is required")):
        response = server.post("/v1/chat/completions", {**CHAT, **extra})
        assert (response.status_code, response.json()) == (200, {"error": error})
    assert b"Use \\/api\\/chat endpoint" in server.post("/v1/chat/completions", {**CHAT, "stream": True}).content


def test_a_chat_completion_with_a_null_n_crashes_the_server(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    with pytest.raises(requests.exceptions.ConnectionError):
        server.post("/v1/chat/completions", {**CHAT, "n": None})
    assert server.wait_exit() == SEGFAULT


def test_one_generation_at_a_time_ps_waits_but_version_does_not(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    standin = run({"HAILO_STANDIN_TOKEN_DELAY": "0.1"})
    response = standin.post("/api/chat", CHAT, stream=True)
    lines = response.iter_lines()
    next(lines)  # the generation is under way
    started = time.monotonic()
    assert standin.get("/").status_code == 200 and standin.get("/api/version").status_code == 200
    quick = time.monotonic() - started
    assert standin.get("/api/ps").status_code == 200
    waited = time.monotonic() - started
    assert quick < 0.2 and waited > 0.4
    assert json.loads([line for line in lines if line][-1])["done"] is True


# ---------------------------------------------------------------- NDJSON framing
def test_streamed_chat_is_chunked_ndjson_with_crlf_lines(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    head, body = raw_http(server.port, "POST", "/api/chat", CHAT)
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/x-ndjson" in head
    chunks = dechunk(body)
    assert all(chunk.endswith(b"\r\n") for chunk in chunks)
    assert json.loads(chunks[-1])["done"] is True
