"""Tests of client/offered.py: the server's model list (bounded, hostile) and the hint for a name not on it."""

from __future__ import annotations

import socket
import time

import pytest

from hailo_ollama_service.client import httpclient, offered

from hostile import endless, reply

LIST_54 = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]


def test_the_list_of_the_stand_in_is_read(standin):
    assert "qwen2.5-instruct:1.5b" in offered.listed("127.0.0.1", standin.port, 5)
    assert offered.not_offered("127.0.0.1", standin.port, "qwen2.5:1.5b", 5) == (
        "qwen2.5:1.5b: not offered by this server; did you mean qwen2.5-instruct:1.5b? (its name before Hailo 5.2)")
    assert offered.not_offered("127.0.0.1", standin.port, "qwen2:1.5b", 5) is None


def test_a_5_1_name_asked_of_a_5_4_list_gets_the_new_name(hostile):
    server = hostile({"/hailo/v1/list": reply(200, {"models": LIST_54})})
    assert offered.not_offered("127.0.0.1", server.port, "qwen2.5-instruct:1.5b", 5) == \
        "qwen2.5-instruct:1.5b: not offered by this server; did you mean qwen2.5:1.5b? (Hailo 5.2 renamed it)"


@pytest.mark.parametrize("answer", [reply(404, {"models": LIST_54}), reply(200, {"models": "qwen2:1.5b"}),
                                    reply(200, [1, 2]), reply(200, b"not json")])
def test_an_answer_that_is_not_a_list_means_no_names_and_no_hint(hostile, answer):
    server = hostile({"/hailo/v1/list": answer})
    assert offered.listed("127.0.0.1", server.port, 5) == []
    assert offered.not_offered("127.0.0.1", server.port, "qwen2.5-instruct:1.5b", 5) is None


def test_names_that_are_not_strings_are_left_out(hostile):
    server = hostile({"/hailo/v1/list": reply(200, {"models": ["qwen2:1.5b", 7, None, {"n": 1}]})})
    assert offered.listed("127.0.0.1", server.port, 5) == ["qwen2:1.5b"]


def test_a_server_that_does_not_answer_gives_no_hint_and_listed_raises():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpclient.HttpError):
        offered.listed("127.0.0.1", port, 2)
    assert offered.not_offered("127.0.0.1", port, "qwen2:1.5b", 2) is None


def test_an_endless_list_stops_at_the_byte_cap_within_the_deadline(hostile):
    server = hostile({"/hailo/v1/list": endless(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"models\": [", b"\"x:1\", " * 4096)})
    start = time.monotonic()
    assert offered.not_offered("127.0.0.1", server.port, "qwen2:1.5b", 3) is None
    assert time.monotonic() - start < 3.5
