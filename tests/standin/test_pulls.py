"""5.1 pulls and deletes against Hailo's (simulated) library: progress lines, the unterminated streaming
answer, skipped and repeated pulls, unwritable blob dirs, the NDJSON framing, delete, and a library that
cannot be reached (library-unreachable, a name that does not resolve, a refused port, no TLS).
Pulls from the stand-in HTTPS library are in test_library.py, 5.3/5.4 pulls in test_mode_53.py and
test_mode_54.py.

README.md: "Manifests, blobs and how the stand-in pulls" and "Checked against the real 5.1.1 server" (Pull).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from standin_helpers import (
    STANDIN_MODULE,
    Layout,
    Standin,
    assert_aborted,
    blob_name,
    dechunk,
    free_port,
    manifest,
    ndjson,
    pull_lines,
    raw_http,
)


# ---------------------------------------------------------------- pull and delete
def test_a_streaming_pull_reports_progress_per_full_step_and_lands_the_blob(layout: Layout, server: Standin) -> None:
    lines = pull_lines(server.port, {"model": "qwen2:1.5b"}, complete=False)
    digest, size = manifest("qwen2:1.5b")["hef_h10h"], manifest("qwen2:1.5b")["standin"]["blob_size"]
    step = STANDIN_MODULE.PULL_CHUNK
    pulling = lines[:-2]
    assert all(line["status"] == "pulling" and line["digest"] == digest and line["total"] == size for line in pulling)
    assert [line["completed"] for line in pulling] == list(range(step, size + 1, step))
    assert size % step and pulling[-1]["completed"] < size  # no line for the last partial step, as upstream
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"status": "success"}]
    blob = layout.blob / f"sha256_{digest}"
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest
    assert not Path(f"{blob}.tmp").exists()


def test_a_5_1_streaming_pull_ends_without_the_zero_chunk_so_requests_reports_a_broken_body(
        layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    head, raw = raw_http(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"}, keep_alive=True)
    assert head.split("\r\n")[1:] == ["Connection: keep-alive", "Transfer-Encoding: chunked",
                                       "Server: oatpp/1.4.0", "Content-Type: application/x-ndjson"]
    assert raw == b'16\r\n{"status":"success"}\r\n'  # then the connection closes
    response = server.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(response.iter_lines())
    assert server.alive()


def test_a_non_streaming_pull_answers_success(layout: Layout, server: Standin) -> None:
    response = server.post("/api/pull", {"model": "llama3.2:3b", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success"})
    assert (layout.blob / blob_name("llama3.2:3b")).is_file()


@pytest.mark.parametrize("method,path", [("POST", "/api/pull"), ("DELETE", "/api/delete")])
def test_name_is_no_alias_of_model(layout: Layout, server: Standin, method: str, path: str) -> None:
    layout.put_blob("llama3.2:3b")
    response = requests.request(method, server.url + path, json={"name": "llama3.2:3b", "stream": False}, timeout=5)
    assert response.status_code == 500
    assert "String::operator std::string() const]: Error. Null pointer." in response.text
    assert (layout.blob / blob_name("llama3.2:3b")).is_file()


def test_a_pull_of_a_present_valid_blob_is_skipped(layout: Layout, server: Standin) -> None:
    blob = layout.put_blob("qwen2:1.5b")
    os.utime(blob, (1_000_000_000, 1_000_000_000))
    (layout.control / "library-unreachable").touch()  # not even contacted
    assert pull_lines(server.port, {"model": "qwen2:1.5b"}, complete=False) == [{"status": "success"}]
    assert blob.stat().st_mtime == 1_000_000_000


def test_a_corrupt_blob_is_pulled_again(layout: Layout, server: Standin) -> None:
    blob = layout.put_blob("qwen2:1.5b")
    blob.write_bytes(b"garbage")
    assert server.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).json() == {"status": "success"}
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == manifest("qwen2:1.5b")["hef_h10h"]


def test_a_pull_of_an_unknown_model_answers_200_with_an_error_in_5_1(server: Standin) -> None:
    response = server.post("/api/pull", {"model": "nope:1b"})
    assert (response.status_code, response.json()) == (200, {"error": "model 'nope:1b' not found"})


def test_a_pull_into_an_unwritable_blob_dir_answers_500_but_a_streaming_one_kills_the_server(
        layout: Layout, server: Standin) -> None:
    Path(f"{layout.blob / blob_name('qwen2:1.5b')}.tmp").mkdir()  # cannot be opened for writing, even by root
    response = server.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "FileOutputStream(filename, mode)]: Error. Can't open file." in response.text
    assert server.alive() and server.get("/api/tags").json() == {"models": []}
    response = server.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        list(response.iter_lines())
    assert_aborted(server, "std::runtime_error", "Can't open file.")


def test_a_pull_into_a_read_only_blob_dir_fails_without_crashing(tmp_path: Path) -> None:
    # Root writes into a read-only directory, so as root the stand-in runs as
    # "nobody" in a world-traversable copy of the layout it owns.
    uid = 65534 if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="standin-ro-")) if uid is not None else tmp_path
    standin = None
    try:
        base.chmod(0o755)
        layout = Layout(base)
        layout.standard()
        layout.blob.mkdir()
        if uid is not None:
            for path in [base, *base.rglob("*")]:
                os.chown(path, uid, uid, follow_symlinks=False)
        layout.blob.chmod(0o555)
        standin = Standin(layout, {}, (), uid=uid).wait_running()
        response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
        assert response.status_code == 500 and standin.alive()
        assert list(layout.blob.iterdir()) == []
    finally:
        if standin is not None:
            standin.kill()
        if uid is not None:
            shutil.rmtree(base, ignore_errors=True)


def test_delete_removes_the_blob_then_answers_404(layout: Layout, server: Standin) -> None:
    blob = layout.put_blob("qwen2:1.5b")
    response = server.delete("/api/delete", {"model": "qwen2:1.5b"})
    assert (response.status_code, response.content) == (200, b"")
    assert "Content-Type" not in response.headers
    assert not blob.exists()
    response = server.delete("/api/delete", {"model": "qwen2:1.5b"})
    assert (response.status_code, response.json()) == (404, {"code": "not_found", "error": "model not found"})
    assert server.delete("/api/delete", {"model": "nope:1b"}).status_code == 404


@pytest.mark.parametrize("method,path", [("GET", "/api/nope"), ("GET", "/v1/models"), ("GET", "/api/pull"),
                                         ("HEAD", "/"), ("OPTIONS", "/api/tags")])
def test_unmapped_paths_and_methods_answer_oatpps_404_page_and_close(server: Standin, method: str, path: str) -> None:
    head, body = raw_http(server.port, method, path, keep_alive=True)
    assert head.split("\r\n") == ["HTTP/1.1 404 Not Found", f"Content-Length: {len(body)}", "Connection: close",
                                   "Server: oatpp/1.4.0"]
    assert body.decode() == ("server=oatpp/1.4.0\ncode=404\ndescription=Not Found\nstacktrace:\n"
                             f"  - No mapping for HTTP-method: '{method}', URL: '{path}'\n"
                             "  - Error processing request\n")


# ---------------------------------------------------------------- NDJSON framing
def test_streamed_pull_is_chunked_ndjson_with_crlf_lines(server: Standin) -> None:
    head, body = raw_http(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"})
    assert head.startswith("HTTP/1.1 200")
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/x-ndjson" in head
    chunks = dechunk(body, complete=False)
    assert all(chunk.endswith(b"\r\n") and chunk.count(b"\n") == 1 for chunk in chunks)
    assert json.loads(chunks[-1]) == {"status": "success"}


# ---------------------------------------------------------------- library reachability
def test_a_streaming_pull_from_an_unreachable_library_kills_the_server_after_the_headers(
        layout: Layout, server: Standin) -> None:
    (layout.control / "library-unreachable").touch()
    response = server.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        ndjson(response)
    assert_aborted(server, "Can't connect")


def test_a_non_streaming_pull_from_an_unreachable_library_answers_500_and_survives(
        layout: Layout, server: Standin) -> None:
    (layout.control / "library-unreachable").touch()
    response = server.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500
    assert "  - [oatpp::network::tcp::client::ConnectionProvider::getConnection()]: Error. Can't connect: " \
           in response.text
    assert server.alive() and not (layout.blob / blob_name("qwen2:1.5b")).exists()


def test_a_library_host_that_does_not_resolve_is_unreachable(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(library={"host": "nonexistent.invalid", "port": 443})
    response = run().post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500
    assert "  - [oatpp::network::tcp::client::ConnectionProvider::getConnection()]. Error. " \
           "Call to getaddrinfo() failed: " in response.text


def test_a_library_port_that_refuses_is_unreachable(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(library={"host": "127.0.0.1", "port": free_port()})
    response = run().post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "Error. Can't connect: Connection refused\n" in response.text


def test_a_library_that_accepts_connections_but_never_answers_tls_fails_the_pull(
        layout: Layout, run: Callable[..., Standin], monkeypatch: pytest.MonkeyPatch) -> None:
    layout.manifests()
    with socket.socket() as library:  # a TCP port, no TLS server behind it
        library.bind(("127.0.0.1", 0))
        library.listen()
        layout.config(library={"host": "localhost", "port": library.getsockname()[1]})
        standin = run({"HAILO_STANDIN_LIBRARY_TIMEOUT": "1"})
        response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "Failed to read response." in response.text
    assert not any(layout.blob.iterdir())
