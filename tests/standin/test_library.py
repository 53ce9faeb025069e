"""Pulls from a real model library: the stand-in library (hailo-ollama-library, HTTPS with a self-signed
certificate for another name, optionally --tamper or --plain) as the library host of 5.1, 5.3 and 5.4:
the request it gets, progress against Content-Length, tampered blobs, a library without the blob, plain
HTTP and 5.4's versioned probes.

README.md: "The stand-in library: hailo-ollama-library" and "Checked against the real 5.1.1 server"
(HTTPS library).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from standin_helpers import (
    MANIFESTS,
    MANIFESTS_54,
    STANDIN_MODULE,
    Layout,
    Library,
    Standin,
    assert_aborted,
    blob_dir_54,
    blob_name,
    eventually,
    hef_54,
    manifest,
    ndjson,
    pull_lines,
    raw_http,
    run_53,
    run_54,
)


def blob_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# ---------------------------------------------------------------- 5.1
def test_a_pull_from_another_library_host_is_an_https_get_of_the_blob_without_certificate_check(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library()
    layout.manifests()
    layout.config(library={"host": "localhost", "port": lib.port})  # the certificate names another host
    standin = run()
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success"})
    digest = manifest("qwen2:1.5b")["hef_h10h"]
    assert hashlib.sha256((layout.blob / f"sha256_{digest}").read_bytes()).hexdigest() == digest
    assert blob_files(layout.blob) == [f"sha256_{digest}"]
    assert eventually(lambda: lib.lines)
    assert lib.lines == [f"127.0.0.1 GET /blob/sha256_{digest} 200 host=localhost:{lib.port}\n"]


def test_a_streaming_https_pull_reports_progress_against_the_content_length_and_ends_unterminated(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library()
    layout.manifests()
    layout.config(library={"host": "127.0.0.1", "port": lib.port})
    standin = run()
    lines = pull_lines(standin.port, {"model": "qwen2:1.5b"}, complete=False)
    size, step = manifest("qwen2:1.5b")["standin"]["blob_size"], STANDIN_MODULE.PULL_CHUNK
    assert [line["completed"] for line in lines[:-2]] == list(range(step, size + 1, step))
    assert all(line["total"] == size for line in lines[:-2])
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"status": "success"}]
    assert standin.alive()


def test_5_1_refuses_a_tampered_blob_with_bad_hash_and_leaves_it_in_place_as_the_real_server_does(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library("--tamper")
    layout.manifests()
    layout.config(library={"host": "127.0.0.1", "port": lib.port})
    standin = run()
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "  - bad hash\n" in response.text
    digest = manifest("qwen2:1.5b")["hef_h10h"]
    assert blob_files(layout.blob) == [f"sha256_{digest}"]  # the bad blob stays (and /api/tags lists it)
    assert [m["name"] for m in standin.get("/api/tags").json()["models"]] == ["qwen2:1.5b"]
    assert standin.delete("/api/delete", {"model": "qwen2:1.5b"}).status_code == 200
    assert blob_files(layout.blob) == []
    head, raw = raw_http(standin.port, "POST", "/api/pull", {"model": "qwen2:1.5b"})
    assert head.startswith("HTTP/1.1 200")
    assert raw.endswith(b'{"status":"verifying sha256 digest"}\r\n\r\n')  # its last line, then the abort
    assert_aborted(standin, "bad hash")
    assert blob_files(layout.blob) == [f"sha256_{digest}"]


def test_5_1_writes_the_404_page_of_a_library_without_the_blob_and_fails_bad_hash(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library], tmp_path: Path) -> None:
    only = tmp_path / "only-llama"
    shutil.copytree(MANIFESTS / "llama3.2", only / "llama3.2")
    lib = library(manifests=(only,))
    layout.manifests()
    layout.config(library={"host": "127.0.0.1", "port": lib.port})
    response = run().post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "  - bad hash\n" in response.text
    assert (layout.blob / blob_name("qwen2:1.5b")).read_bytes() == b"not found\n"


def test_a_plain_http_library_fails_with_failed_to_read_response_and_leaves_nothing(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library("--plain")
    layout.manifests()
    layout.config(library={"host": "127.0.0.1", "port": lib.port})
    standin = run()
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500
    assert "  - [oatpp::web::client::HttpRequestExecutor::executeOnce()]: Failed to read response.\n" in response.text
    assert blob_files(layout.blob) == [] and standin.alive()


# ---------------------------------------------------------------- 5.3
def test_5_3_pulls_over_https_from_the_library_host_of_its_environment_on_port_443_or_the_one_given(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library()
    layout.manifests()
    standin = run_53(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"localhost:{lib.port}")
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"status": "success"}]
    blob = layout.data_home / "hailo-ollama" / "models" / "blob" / blob_name("qwen2:1.5b")
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == manifest("qwen2:1.5b")["hef_h10h"]


def test_5_3_refuses_a_tampered_blob_and_removes_it(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library("--tamper")
    layout.manifests()
    standin = run_53(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"127.0.0.1:{lib.port}")
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert lines[-2:] == [{"status": "verifying sha256 digest"},
                          {"error": "hash verification failed for downloaded blob"}]
    assert blob_files(layout.data_home / "hailo-ollama" / "models" / "blob") == [] and standin.alive()
    response = standin.post("/api/pull", {"model": "llama9:1b", "stream": False})
    assert response.status_code == 404


def test_5_3_reports_the_http_status_of_a_library_without_the_blob(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library], tmp_path: Path) -> None:
    only = tmp_path / "only-llama"
    shutil.copytree(MANIFESTS / "llama3.2", only / "llama3.2")
    lib = library(manifests=(only,))
    layout.manifests()
    standin = run_53(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"127.0.0.1:{lib.port}")
    assert pull_lines(standin.port, {"model": "qwen2:1.5b"}, complete=True) == [
        {"error": "failed to download blob: HTTP 404"}]
    assert standin.alive()


# ---------------------------------------------------------------- 5.4
def test_5_4_probes_the_versioned_paths_then_pulls_the_hef_checked_against_its_companion(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library()
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"127.0.0.1:{lib.port}")
    hef, data = hef_54("qwen2:1.5b")
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert lines[-3:] == [{"status": "verifying sha256 digest"}, {"status": "resolved_version: 5.4.0"},
                          {"status": "success"}]
    assert (blob_dir_54(layout) / hef).read_bytes() == data
    stem = hef[:-4]
    assert eventually(lambda: len(lib.lines) == 4)
    assert [line.split()[1:4] for line in lib.lines] == [
        ["GET", f"/v5.4.0/blob/{hef}", "206"], ["GET", f"/v5.4.0/blob/{stem}.sha256", "206"],
        ["GET", f"/v5.4.0/blob/{stem}.sha256", "200"], ["GET", f"/v5.4.0/blob/{hef}", "200"]]


def test_5_4_reports_a_tampered_hef_and_removes_its_download(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library("--tamper")
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"127.0.0.1:{lib.port}")
    hef, _ = hef_54("qwen2:1.5b")
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert (response.status_code, response.json()) == (500, {"error": f"hash verification failed for {hef} at v5.4.0"})
    assert blob_files(blob_dir_54(layout)) == [] and standin.alive()


def test_5_4_reports_a_library_that_lacks_the_hef_at_both_versions(
        layout: Layout, run: Callable[..., Standin], library: Callable[..., Library]) -> None:
    lib = library(manifests=(MANIFESTS,))  # 5.1 manifests only: no versioned HEF paths
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run, HAILO_OLLAMA_LIBRARY_HOST=f"127.0.0.1:{lib.port}")
    hef, _ = hef_54("qwen2:1.5b")
    assert ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)) == [
        {"error": f"no complete blob pair (HEF + .sha256 companion) for {hef} at v5.4.0 or fallback v5.3.0"}]
    assert eventually(lambda: len(lib.lines) == 2)
    assert [line.split()[2] for line in lib.lines] == [f"/v5.4.0/blob/{hef}", f"/v5.3.0/blob/{hef}"]
