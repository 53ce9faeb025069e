"""Tests of client/httpclient.py against a hostile HTTP server on loopback (tests/unit/hostile.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc

import pytest

from hailo_ollama_service.client import api, httpclient
from hailo_ollama_service.client.httpclient import HttpError

from hostile import NDJSON_HEAD, chunk, drip, endless, ndjson, reply, silence
from unit_helpers import free_port


def test_a_byte_a_second_answer_ends_at_the_deadline(hostile):
    # a byte every 50 ms: every single read is quick, only a total deadline ends it
    server = hostile({"/api/tags": drip(reply(200, {"models": []}) + b" " * 1000, 0.05)})
    start = time.monotonic()
    with pytest.raises(HttpError) as caught:
        httpclient.request("127.0.0.1", server.port, "GET", "/api/tags", deadline=0.5)
    assert 0.45 <= time.monotonic() - start < 1.2
    assert str(caught.value) == f"http://127.0.0.1:{server.port}/api/tags: no complete answer within 0.5 s"
    assert caught.value.timed_out and isinstance(caught.value, OSError)


def test_a_server_that_never_answers_ends_at_the_deadline(hostile):
    server = hostile({"/api/version": silence})
    start = time.monotonic()
    with pytest.raises(HttpError, match="no complete answer within 0.3 s"):
        api.get_json("127.0.0.1", server.port, "/api/version", 0.3)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("head, block", [
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[", b'"endless",' * 6553),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(b"x" * 65536)),
], ids=["close-delimited", "chunked"])
def test_an_endless_body_stops_at_the_cap_and_memory_stays_small(hostile, head, block):
    server = hostile({"/api/ps": endless(head, block)})
    tracemalloc.start()
    try:
        start = time.monotonic()
        with pytest.raises(HttpError) as caught:
            httpclient.request("127.0.0.1", server.port, "GET", "/api/ps", deadline=10)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"http://127.0.0.1:{server.port}/api/ps: answer over 1048576 bytes"
    assert caught.value.kind == "cap" and time.monotonic() - start < 5
    assert peak < 4 * httpclient.BODY_CAP  # the body is joined once at most: never more than a few MiB


def test_a_declared_length_over_the_cap_is_refused_before_reading_on(hostile):
    server = hostile({"/api/tags": b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n"})
    start = time.monotonic()
    with pytest.raises(HttpError, match="answer over 1048576 bytes"):
        httpclient.request("127.0.0.1", server.port, "GET", "/api/tags", deadline=5)
    assert time.monotonic() - start < 1  # not waiting for 10 GiB that never come


def test_an_endless_header_block_stops_at_its_cap(hostile):
    server = hostile({"/": endless(b"HTTP/1.1 200 OK\r\n", b"X-Hostile: " + b"a" * 1000 + b"\r\n")})
    with pytest.raises(HttpError, match=f"header block over {httpclient.HEAD_CAP} bytes"):
        httpclient.request("127.0.0.1", server.port, "GET", "/", deadline=5)


def test_chunked_content_length_and_close_delimited_bodies_decode(hostile):
    server = hostile({
        "/chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                     b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"),
        "/length": reply(200, b"exactly this", close=False),
        "/close": b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        "/continue": b"HTTP/1.1 100 Continue\r\n\r\n" + reply(201, {"a": 1}),
    })
    status, headers, body = httpclient.request("127.0.0.1", server.port, "GET", "/chunked")
    assert (status, headers["x-a"], body) == (200, "1", b"hello 0123456789")
    assert httpclient.request("127.0.0.1", server.port, "GET", "/length").body == b"exactly this"
    assert httpclient.request("127.0.0.1", server.port, "GET", "/close").body == b"until the end"
    assert httpclient.request_json("127.0.0.1", server.port, "GET", "/continue") == (201, {"a": 1})


def test_a_body_cut_short_is_an_error_not_a_shorter_body(hostile):
    server = hostile({"/length": reply(200, b"0123456789")[:-3], "/chunked": NDJSON_HEAD + b"a\r\n01234"})
    for path in ("/length", "/chunked"):
        with pytest.raises(HttpError, match=f"{path}: connection closed mid-answer"):
            httpclient.request("127.0.0.1", server.port, "GET", path)


def test_the_request_is_json_with_connection_close_and_ignores_a_proxy(hostile, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    server = hostile({"POST /api/show": reply(200, {"license": "MIT"})})
    assert api.post_json("127.0.0.1", server.port, "/api/show", {"model": "qwen2:1.5b"}, 5) == (200, {"license": "MIT"})
    method, path, headers, body = server.requests[0]
    assert (method, path, json.loads(body)) == ("POST", "/api/show", {"model": "qwen2:1.5b"})
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert headers["host"] == f"127.0.0.1:{server.port}"


def test_a_server_that_is_not_listening_is_an_os_error_naming_the_url():
    port = free_port()
    with pytest.raises(OSError) as caught:
        httpclient.request("127.0.0.1", port, "GET", "/api/version", deadline=2)
    assert str(caught.value).startswith(f"http://127.0.0.1:{port}/api/version: cannot connect (")
    assert "\n" not in str(caught.value)


def test_an_ipv6_literal_is_reached_in_brackets():
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    listener.listen(1)
    seen = []

    def serve():
        conn, _ = listener.accept()
        seen.append(conn.recv(65536))
        conn.sendall(reply(200, {"version": "0.5.1"}))
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        port = listener.getsockname()[1]
        assert httpclient.request_json("::1", port, "GET", "/api/version", deadline=5) == (200, {"version": "0.5.1"})
        assert f"Host: [::1]:{port}\r\n".encode() in seen[0]
    finally:
        listener.close()


def test_deep_json_is_refused_as_a_value_error(hostile):
    server = hostile({"/api/tags": reply(200, b'{"models":' + b"[" * 5000 + b"]" * 5000 + b"}")})
    with pytest.raises(ValueError, match="/api/tags: the answer is nested 33 levels deep"):
        httpclient.request_json("127.0.0.1", server.port, "GET", "/api/tags")
    assert api.get_json("127.0.0.1", server.port, "/api/tags", 5) == (200, None)


def test_a_stream_yields_each_line_as_it_arrives(hostile):
    got_first = threading.Event()

    def script(conn):
        conn.send(NDJSON_HEAD + chunk(b'{"response":"Hel"}\r\n'))
        if got_first.wait(3):  # the next token only once the client has shown the first
            conn.send(chunk(b'{"response":"lo","done":true}\r\n') + b"0\r\n\r\n")
    server = hostile({"POST /api/generate": script})
    lines = []
    start = time.monotonic()
    with httpclient.stream("127.0.0.1", server.port, "POST", "/api/generate", {"model": "m"}, 5, 2) as answer:
        assert answer.status == 200
        for line in answer.lines():
            lines.append(json.loads(line))
            got_first.set()
    assert [event["response"] for event in lines] == ["Hel", "lo"]
    assert time.monotonic() - start < 2


def test_a_stream_stops_at_its_total_deadline_though_lines_keep_coming(hostile):
    server = hostile({"/api/pull": ndjson(({"status": "pulling"} for _ in range(10 ** 6)), pause=0.05)})
    lines = []
    start = time.monotonic()
    with pytest.raises(HttpError, match="/api/pull: no complete answer within 0.5 s"):
        with httpclient.stream("127.0.0.1", server.port, "POST", "/api/pull", {}, 0.5, 0.2) as answer:
            lines.extend(answer.lines())
    assert len(lines) >= 3 and 0.45 < time.monotonic() - start < 1.2


def test_a_silent_stream_stops_at_its_idle_timeout(hostile):
    server = hostile({"/api/pull": ndjson([{"status": "pulling"}], end=False, then=silence)})
    lines = []
    start = time.monotonic()
    with pytest.raises(HttpError, match="/api/pull: no data for 0.2 s") as caught:
        with httpclient.stream("127.0.0.1", server.port, "POST", "/api/pull", {}, 30, 0.2) as answer:
            lines.extend(answer.lines())
    assert lines == [b'{"status": "pulling"}'] and caught.value.timed_out
    assert time.monotonic() - start < 1.5


def test_a_line_over_the_line_cap_ends_the_stream_without_growing(hostile):
    server = hostile({"/api/chat": endless(NDJSON_HEAD, chunk(b"endless " * 1024))})
    tracemalloc.start()
    try:
        with pytest.raises(HttpError, match=f"/api/chat: a line over {httpclient.LINE_CAP} bytes"):
            with httpclient.stream("127.0.0.1", server.port, "POST", "/api/chat", {}, 10, 5) as answer:
                list(answer.lines())
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_stream_over_its_total_cap_ends(hostile):
    server = hostile({"/api/pull": ndjson({"status": "pulling"} for _ in range(10 ** 6))})
    lines = []
    with pytest.raises(HttpError, match="answer over 10000 bytes"):
        with httpclient.stream("127.0.0.1", server.port, "POST", "/api/pull", {}, 10, 5) as answer:
            lines.extend(answer.lines(cap=10000))
    assert 0 < len(lines) * len(b'{"status": "pulling"}\r\n') <= 10000


def test_a_last_chunk_without_its_end_is_not_passed_on(hostile):
    # how upstream 5.1.1 ends every streaming pull: the last chunk's CRLF and the zero chunk never come
    cut = b'16\r\n{"status":"success"}\r\n'  # a chunk of 0x16 bytes, and then nothing
    server = hostile({"/api/pull": NDJSON_HEAD + chunk(b'{"status":"pulling"}\r\n') + cut})
    lines = []
    with pytest.raises(HttpError, match="connection closed mid-answer"):
        with httpclient.stream("127.0.0.1", server.port, "POST", "/api/pull", {}, 5, 5) as answer:
            lines.extend(answer.lines())
    assert lines == [b'{"status":"pulling"}']


def test_leaving_a_stream_closes_the_connection_at_once(hostile):
    closed = threading.Event()

    def script(conn):
        conn.send(NDJSON_HEAD + chunk(b'{"status":"pulling"}\r\n'))
        if conn.gone(3):
            closed.set()
    server = hostile({"/api/pull": script})
    with httpclient.stream("127.0.0.1", server.port, "POST", "/api/pull", {}, 10, 5) as answer:
        for _line in answer.lines():
            break
    assert closed.wait(1)


def test_escape_sequences_in_an_error_body_are_escaped_in_its_excerpt(hostile):
    server = hostile({"/api/generate": reply(500, b"\x1b]0;owned\x07\x1b[2J failed \xe2\x80\xae", "text/plain")})
    with httpclient.stream("127.0.0.1", server.port, "POST", "/api/generate", {}, 5) as answer:
        text = answer.excerpt()
    assert answer.status == 500
    assert text == "\\x1b]0;owned\\x07\\x1b[2J failed \\u202e"


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 2\xb200 OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n"])
def test_an_answer_that_is_not_http_is_a_one_line_error(hostile, answer):
    server = hostile({"/api/version": answer})
    with pytest.raises(HttpError) as caught:
        httpclient.request("127.0.0.1", server.port, "GET", "/api/version")
    assert caught.value.kind == "malformed" and str(caught.value).startswith(
        f"http://127.0.0.1:{server.port}/api/version: malformed answer (")
