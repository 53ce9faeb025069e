"""The HTTP surface of a 5.1 stand-in, as checked against the real 5.1.1 server: routes, headers and error
pages, JSON out (escapes, timestamps), /api/version, /hailo/v1/list, /api/tags, /api/ps, /api/show, and
what it does with request bodies (content types, oatpp's lenient parser and its errors, typed fields).
Pulls and deletes are in test_pulls.py, chat and generate in test_chat.py.

README.md: "Checked against the real 5.1.1 server" (HTTP, error pages, JSON out, bodies, /api/show).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import requests

from standin_helpers import (
    CHAT,
    FIVE,
    STANDIN_MODULE,
    Layout,
    Standin,
    eventually,
    manifest,
    raw_http,
)


# ---------------------------------------------------------------- endpoints
def test_root_answers_plain_text_without_a_content_type(server: Standin) -> None:
    response = server.get("/")
    assert (response.status_code, response.text) == (200, "hailo-ollama is running")
    assert "Content-Type" not in response.headers


def test_headers_come_in_oatpp_order_without_a_date(server: Standin) -> None:
    head, body = raw_http(server.port, "GET", "/api/version")
    assert head.split("\r\n") == ["HTTP/1.1 200 OK", "Content-Length: 19", "Content-Type: application/json",
                                   "Connection: close", "Server: oatpp/1.4.0"]
    assert body == b'{"version":"0.5.1"}'


def test_a_trailing_slash_or_an_empty_path_segment_still_finds_the_endpoint(server: Standin) -> None:
    for path in ("/api/version/", "//api/version", "/api/version?verbose=1"):
        assert server.get(path).json() == {"version": "0.5.1"}, path
    assert server.get("/API/VERSION").status_code == 404


def test_json_answers_escape_slashes_and_non_ascii_like_oatpp(server: Standin) -> None:
    response = requests.post(server.url + "/api/show", data='{"model": "a/b\u00e9"}'.encode(), timeout=5)
    assert response.content == b'{"error":"model \'a\\/b\\u00E9\' not found"}'


def test_version_is_0_5_1(server: Standin) -> None:
    response = server.get("/api/version")
    assert response.json() == {"version": "0.5.1"}
    assert response.headers["Content-Type"] == "application/json"


def test_the_hailo_list_names_every_manifest(server: Standin) -> None:
    assert server.get("/hailo/v1/list").json() == {"models": FIVE}


def test_tags_lists_only_models_whose_blob_is_present(layout: Layout, server: Standin) -> None:
    assert server.get("/api/tags").json() == {"models": []}
    blob = layout.put_blob("llama3.2:3b")
    os.utime(blob, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    models = server.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["llama3.2:3b"]
    assert list(models[0]) == ["name", "model", "modified_at", "size", "details"]
    assert models[0]["size"] == blob.stat().st_size
    assert models[0]["modified_at"] == "2023-11-14T22:13:20.123456789Z"  # nanoseconds, as upstream
    assert models[0]["details"]["parameter_size"] == "3B"
    assert eventually(lambda: "list_models:model: llama3.2:3b" in server.out)


def test_a_timestamp_is_cut_toward_zero_and_a_negative_rest_is_printed_as_cpp_does() -> None:
    iso = STANDIN_MODULE.iso_ns
    assert iso(1_700_000_000_000_000_005) == "2023-11-14T22:13:20.000000005Z"
    assert iso(-1_500_000_000) == "1969-12-31T23:59:59.-500000000Z"
    assert iso(-5) == "1970-01-01T00:00:00.0000000-5Z"


def test_ps_is_empty_before_any_generation(server: Standin) -> None:
    assert server.get("/api/ps").json() == {"models": []}


def test_show_describes_a_model_with_its_stop_tokens_and_template_in_5_1(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    body = server.post("/api/show", {"model": "qwen2:1.5b"}).json()
    assert list(body) == ["license", "modelfile", "parameters", "template", "details", "model_info", "modified_at"]
    assert (body["license"], body["modelfile"], body["model_info"]) == ("", "", "")  # 5.1 never reads the license
    assert body["parameters"] == "stop" + " " * 29 + '"<|endoftext|>"\nstop' + " " * 29 + '"<|im_end|>"'
    assert body["template"] == manifest("qwen2:1.5b")["template_params"]["chat_template"]
    assert body["details"]["family"] == "qwen2"


@pytest.mark.parametrize("name", ["qwen2:1.5b", "nope:1b"], ids=["no-blob", "unknown"])
def test_show_of_a_model_without_blob_answers_200_with_an_error(server: Standin, name: str) -> None:
    response = server.post("/api/show", {"model": name})
    assert (response.status_code, response.json()) == (200, {"error": f"model '{name}' not found"})


def test_a_request_line_it_cannot_read_answers_the_404_page_with_empty_method_and_url(server: Standin) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"  - No mapping for HTTP-method: '', URL: ''\n" in received


# ---------------------------------------------------------------- content types and bad bodies
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/x-ndjson"])
def test_a_body_that_is_not_json_typed_answers_500_no_suitable_mapper(server: Standin, content_type: str) -> None:
    response = requests.post(server.url + "/api/show", data='{"model": "qwen2:1.5b"}',
                             headers={"Content-Type": content_type}, timeout=5)
    assert response.status_code == 500
    assert response.text == ("server=oatpp/1.4.0\ncode=500\ndescription=Internal Server Error\nstacktrace:\n"
                             "  - No suitable mapper found to deserialize the request body.\n"
                             "  - [ApiController]: Error processing request\n  - Error processing request\n")
    assert "Content-Type" not in response.headers and response.headers["Connection"] == "close"
    assert server.get("/api/version").status_code == 200


@pytest.mark.parametrize("content_type", [None, "", "APPLICATION/JSON", "application/json; charset=utf-8"])
def test_a_json_body_with_no_or_any_json_content_type_is_accepted(
        layout: Layout, server: Standin, content_type: str | None) -> None:
    layout.put_blob("qwen2:1.5b")
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = requests.post(server.url + "/api/show", data=b'{"model": "qwen2:1.5b"}', headers=headers, timeout=5)
    assert response.status_code == 200 and "details" in response.json()


@pytest.mark.parametrize("body,error", [
    (b"{not json", "[oatpp::json::Deserializer::deserializeMap()]: Item key name expected"),
    (b"", "[json]: Unknown character."),
    (b'{"model":', "[json]: Unknown character."),
    (b'{"model"', "[oatpp::json::Deserializer::deserializeMap()]: ':' expected"),
    (b'{"model":"x"', "[oatpp::json::Deserializer::deserializeMap()]: '}' expected"),
    (b"[1,", "[oatpp::json::Deserializer::deserializeArray()]: ']' expected"),
    (b"nul", "[oatpp::json::Deserializer::deserializeNull()]: 'null' expected"),
    (b"tru", "[oatpp::json::Deserializer::deserializeBoolean()]: 'true' or 'false' expected"),
    (b"{}", "[oatpp::data::type::String::operator std::string() const]: Error. Null pointer."),
    (b"[]", "[oatpp::data::type::String::operator std::string() const]: Error. Null pointer."),
    (b"[1]", "[oatpp::data::mapping::TreeChildrenOperator::getPair()]: Node type doesn't support pairs"),
    (b"5", "[oatpp::data::mapping::TreeChildrenOperator::TreeChildrenOperator()]: Node type is NOT suppoerted"),
    (b'{"model": 5}', "[oatpp::data::mapping::TreeToObjectMapper::mapString()]: Node is NOT a STRING"),
])
def test_bad_json_or_an_empty_object_answers_500_with_oatpps_error_and_the_server_survives(
        server: Standin, body: bytes, error: str) -> None:
    for path in ("/api/show", "/api/pull", "/api/chat", "/api/generate"):
        response = requests.post(server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert response.status_code == 500, path
        assert response.text.split("\n")[4] == f"  - {error}", path
    assert server.alive() and server.get("/api/version").status_code == 200


def test_the_json_parser_is_as_lenient_as_oatpps(server: Standin) -> None:
    for body in (b'  {"model":"nope:1b"} trailing', b'{"model":"nope:1b",}', b'{"stream":false "model":"nope:1b"}',
                 b'{"model":"x","model":"nope:1b"}'):
        response = requests.post(server.url + "/api/show", data=body, timeout=5)
        assert response.json() == {"error": "model 'nope:1b' not found"}, body


def test_a_null_body_answers_400_missing_body_parameter(server: Standin) -> None:
    for path, name in (("/api/show", "show_params"), ("/api/pull", "pull_params"),
                       ("/api/chat", "generation_params"), ("/v1/chat/completions", "generation_params")):
        response = requests.post(server.url + path, data=b"null", timeout=5)
        assert response.status_code == 400, path
        assert f"  - Missing valid body parameter '{name}'\n" in response.text


def test_a_body_without_length_or_chunking_answers_500_invalid_request(server: Standin) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        received = b""
        while b"Invalid Request." not in received:  # the answer may come in several pieces
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
    assert received.startswith(b"HTTP/1.1 500 ")
    assert b"SimpleBodyDecoder::decode()]: Error. Invalid Request." in received


@pytest.mark.parametrize("field,value,error", [
    ("keep_alive", "5m", "mapPrimitive()]: Value is NOT a Primitive type"),
    ("stream", "yes", "mapPrimitive()]: Value is NOT a Primitive type"),
    ("messages", "hi", "TreeChildrenOperator()]: Node type is NOT suppoerted"),
    ("messages", [{"role": 1}], "mapString()]: Node is NOT a STRING"),
    ("options", {"temperature": "hot"}, "mapPrimitive()]: Value is NOT a Primitive type"),
    ("tools", [{"type": "function"}], "mapString()]: Node is NOT a STRING"),  # a String until 5.4
])
def test_a_field_of_the_wrong_type_answers_500(layout: Layout, server: Standin, field: str, value: Any,
                                               error: str) -> None:
    layout.put_blob("qwen2:1.5b")
    response = server.post("/api/chat", {**CHAT, field: value})
    assert response.status_code == 500 and error in response.text


def test_numbers_and_booleans_convert_into_each_other_as_in_cpp(layout: Layout, server: Standin) -> None:
    assert STANDIN_MODULE.map_value(True, ("int", 32, True)) == 1
    assert STANDIN_MODULE.map_value(-5.7, ("int", 32, True)) == -5
    assert STANDIN_MODULE.map_value(4294967297, ("int", 32, True)) == 1
    assert STANDIN_MODULE.map_value(300, ("int", 8, True)) == 44
    assert STANDIN_MODULE.map_value(0, "bool") is False
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/pull", {"model": "qwen2:1.5b", "stream": 0}).json() == {"status": "success"}
