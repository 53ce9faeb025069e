"""5.4 mode (HAILO_STANDIN_MODE=5.4): hef_filename manifests, blobs named after the HEF with a .version
marker, versioned pulls with the 5.3.0 fallback, pull failures reported on the stream, delete, the tools
array and the /dev/h1x-0 device. 5.4 pulls from a real HTTPS library are in test_library.py.

README.md: "5.4 mode".
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable

from standin_helpers import (
    CHAT,
    MANIFESTS_54,
    Layout,
    Standin,
    blob_dir_54,
    eventually,
    hef_54,
    ndjson,
    run_54,
)


def test_5_4_exits_1_on_manifests_without_hef_filename(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()  # 5.1 manifests: hef_h10h only
    standin = run({"HAILO_STANDIN_MODE": "5.4", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
    assert standin.wait_exit() == 1
    assert "MyApp:Fatal error: [json.exception.out_of_range.403] key 'hef_filename' not found" in standin.out


def test_5_4_pulls_into_the_hef_filename_with_a_version_marker_and_ends_the_stream_cleanly(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run)
    hef, data = hef_54("qwen2:1.5b")
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))  # requests reads a clean end
    pulling, tail = lines[:-3], lines[-3:]
    digest = hashlib.sha256(data).hexdigest()  # the library's .sha256 companion, not a manifest field
    assert pulling and all(line["digest"] == digest and line["total"] == len(data) for line in pulling)
    assert tail == [{"status": "verifying sha256 digest"}, {"status": "resolved_version: 5.4.0"}, {"status": "success"}]
    assert (blob_dir_54(layout) / hef).read_bytes() == data
    assert (blob_dir_54(layout) / f"{hef}.version").read_text() == "5.4.0\n"
    assert sorted(p.name for p in blob_dir_54(layout).iterdir()) == [hef, f"{hef}.version"]
    assert [m["name"] for m in standin.get("/api/tags").json()["models"]] == ["qwen2:1.5b"]


def test_5_4_answers_a_non_streaming_pull_with_the_resolved_version(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    response = run_54(layout, run).post("/api/pull", {"model": "llama3.2:1b", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success", "resolved_version": "5.4.0"})


def test_5_4_serves_a_pull_of_a_model_cached_at_its_version_without_the_library(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run)
    assert standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).status_code == 200
    (layout.control / "library-unreachable").touch()
    assert ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)) == [
        {"status": "resolved_version: 5.4.0"}, {"status": "success"}]
    hef, _ = hef_54("qwen2:1.5b")
    (blob_dir_54(layout) / f"{hef}.version").unlink()  # a HEF without its marker is fetched again
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert len(lines) == 1 and "Error. Can't connect: " in lines[0]["error"]


def test_5_4_falls_back_to_the_5_3_0_library_with_a_warning_line(layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.manifests(source=MANIFESTS_54) / "qwen3" / "1.7b" / "manifest.json"
    data = json.loads(path.read_text())
    data["standin"]["library_versions"] = ["5.3.0"]
    path.write_text(json.dumps(data))
    standin = run_54(layout, run)
    warning = {"status": "warning: could not get the requested version (5.4.0). falling back to v5.3.0"}
    lines = ndjson(standin.post("/api/pull", {"model": "qwen3:1.7b"}, stream=True))
    assert lines[0] == warning and lines[-2:] == [{"status": "resolved_version: 5.3.0"}, {"status": "success"}]
    assert (blob_dir_54(layout) / "Qwen3-1.7B-Instruct.hef.version").read_text() == "5.3.0\n"
    assert ndjson(standin.post("/api/pull", {"model": "qwen3:1.7b"}, stream=True)) == [
        warning, {"status": "resolved_version: 5.3.0"}, {"status": "success"}]  # cached at 5.3.0: no download
    assert eventually(lambda: "falling back from v5.4.0 to v5.3.0 for Qwen3-1.7B-Instruct.hef" in standin.out)


def test_5_4_reports_every_pull_failure_on_the_stream_and_survives(
        layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.manifests(source=MANIFESTS_54) / "qwen2.5" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    del data["standin"]  # the stand-in library has no blob for it at any version
    path.write_text(json.dumps(data))
    standin = run_54(layout, run)
    missing = ("no complete blob pair (HEF + .sha256 companion) for Qwen2.5-1.5B-Instruct.hef at v5.4.0 "
               "or fallback v5.3.0")
    assert ndjson(standin.post("/api/pull", {"model": "qwen2.5:1.5b"}, stream=True)) == [{"error": missing}]
    response = standin.post("/api/pull", {"model": "qwen2.5:1.5b", "stream": False})
    assert (response.status_code, response.json()) == (500, {"error": missing})
    (layout.control / "library-unreachable").touch()
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))  # 5.3 would abort here
    assert len(lines) == 1 and "Error. Can't connect: " in lines[0]["error"]
    (layout.control / "library-unreachable").unlink()
    shutil.rmtree(blob_dir_54(layout))
    blob_dir_54(layout).write_text("")  # a file where the blob dir goes
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert lines == [{"error": f"failed to create cache dir '{blob_dir_54(layout)}': File exists"}]
    assert standin.alive()


def test_5_4_delete_removes_the_hef_and_its_version_marker(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run)
    assert standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).status_code == 200
    response = standin.delete("/api/delete", {"model": "qwen2:1.5b"})
    assert (response.status_code, response.content) == (200, b"")
    assert list(blob_dir_54(layout).iterdir()) == []
    assert standin.delete("/api/delete", {"model": "qwen2:1.5b"}).status_code == 404


def test_5_4_takes_tools_as_an_array_where_5_3_wants_a_string(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    tools = [{"type": "function", "function": {"name": "now", "parameters": {}}}]
    message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "now"}}]}
    response = run_54(layout, run).post("/api/chat", {**CHAT, "messages": [message], "tools": tools})
    assert (response.status_code, response.json()) == (404, {"error": "model 'qwen2:1.5b' not found"})


def test_5_4_opens_h1x_0_and_generates_from_the_hef_filename(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    hef, data = hef_54("qwen2:1.5b")
    blob_dir_54(layout).mkdir(parents=True)
    (blob_dir_54(layout) / hef).write_bytes(data)  # no .version marker needed to use it
    (layout.dev / "hailo0").touch()
    standin = run_54(layout, run)
    assert standin.post("/api/chat", CHAT).status_code == 500
    assert standin.post("/api/chat", {"model": "qwen2:1.5b", "keep_alive": 0}).status_code == 200
    (layout.dev / "h1x-0").touch()
    assert ndjson(standin.post("/api/chat", CHAT))[-1]["done"] is True
    show = standin.post("/api/show", {"model": "qwen2:1.5b"}).json()
    assert list(show) == ["license", "modelfile", "parameters", "details", "model_info", "modified_at"]
