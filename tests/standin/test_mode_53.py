"""5.3 mode (HAILO_STANDIN_MODE=5.3): no config file, OLLAMA_HOST and HAILO_OLLAMA_LIBRARY_HOST, manifests
from the first existing XDG data dir, blobs under XDG_DATA_HOME, 404s, its pull errors and the /dev/h1x-0
device with its VDevice group id. 5.3 pulls from a real HTTPS library are in test_library.py.

README.md: "5.3 mode".
"""

from __future__ import annotations

import fcntl
import json
import socket
import time
from collections.abc import Callable

import pytest
import requests

from standin_helpers import (
    CHAT,
    FIVE,
    STANDIN_MODULE,
    Layout,
    Standin,
    assert_aborted,
    blob_name,
    ndjson,
    pull_lines,
    run_53,
)


# ---------------------------------------------------------------- start-up and OLLAMA_HOST
def test_5_3_needs_no_config_file_listens_on_ollama_host_and_creates_its_blob_dir_at_start(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    assert standin.get("/hailo/v1/list").json() == {"models": FIVE}
    assert f"MyApp:Using 'OLLAMA_HOST' server connection: 127.0.0.1:{layout.port}" in standin.out
    assert (layout.data_home / "hailo-ollama" / "models" / "blob").is_dir()  # create_directories() in main
    assert not layout.blob.exists()  # 5.3 keeps blobs under XDG_DATA_HOME


def test_5_3_exits_1_when_its_blob_dir_cannot_be_created(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.data_home.mkdir(parents=True)
    (layout.data_home / "hailo-ollama").write_text("")  # a file where a directory must go, even for root
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
    assert standin.wait_exit() == 1
    assert "Fatal error: filesystem error: cannot create directories" in standin.out


def test_5_3_ignores_the_5_1_config_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(text="this is not JSON")
    assert run_53(layout, run).get("/").status_code == 200


def test_5_3_binds_an_ipv6_ollama_host_in_brackets(layout: Layout, run: Callable[..., Standin]) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    layout.manifests()
    run_53(layout, run, OLLAMA_HOST=f"[::1]:{layout.port}")
    response = requests.get(f"http://[::1]:{layout.port}/api/version", timeout=5)
    assert response.json() == {"version": "0.5.1"}


def test_5_3_warns_about_an_invalid_ollama_host_and_falls_back_to_0_0_0_0_port_8000(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": "127.0.0.1:notaport"}, wait=False)
    deadline = time.monotonic() + 5
    while "on port 8000" not in standin.out and standin.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    standin.kill()  # do not keep port 8000 from anybody else
    warning = next(line for line in standin.out.splitlines() if "Invalid OLLAMA_HOST" in line)
    assert warning.startswith("\x1b[45m W \x1b[0m|") and warning.endswith(
        "| MyApp:Invalid OLLAMA_HOST: '127.0.0.1:notaport' has non-numeric port 'notaport', using defaults")
    assert "MyApp:Using 'OLLAMA_HOST' server connection: 0.0.0.0:8000" in standin.out


def test_5_3_passes_an_ollama_host_name_it_cannot_resolve_to_the_bind_which_exits_1(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"no-such-host.invalid:{layout.port}"}, wait=False)
    assert standin.wait_exit() == 1
    assert "Invalid OLLAMA_HOST" not in standin.out
    assert "Fatal error: [oatpp::network::tcp::server::ConnectionProvider::instantiateServer()]: " \
           "Error. Call to getaddrinfo() failed." in standin.out


def test_5_3_reports_the_vdevice_group_id(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert "MyApp:Using VDevice group_id: shared" in run_53(layout, run, HAILO_OLLAMA_VDEVICE_GROUP_ID="shared").out


def test_5_3_startup_errors_log_fatal_error_on_stdout_and_exit_1(layout: Layout, run: Callable[..., Standin]) -> None:
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
    assert standin.wait_exit() == 1
    errors = [line for line in standin.out.splitlines() if line.startswith("\x1b[41m E ")]
    assert [line.split("| ", 1)[1] for line in errors] == [
        "MyApp:Failed to find manifest directory: hailo-ollama directory not found",
        "MyApp:Exception in run(): hailo-ollama directory not found",
        "MyApp:Fatal error: hailo-ollama directory not found"]
    assert "terminate called" not in standin.err


def test_5_3_exits_1_when_the_port_is_in_use(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
        assert standin.wait_exit() == 1
    assert "Fatal error: " in standin.out and "Couldn't bind" in standin.out


def test_5_3_parses_ollama_host_like_its_parse_ollama_host() -> None:
    parse = STANDIN_MODULE.parse_host_port
    assert parse("0.0.0.0:11434", "0.0.0.0", 8000) == ("0.0.0.0", 11434)
    assert parse("example.org", "0.0.0.0", 8000) == ("example.org", 8000)
    assert parse("two words", "0.0.0.0", 8000) == ("two words", 8000)  # no check of the host name
    assert parse("[::]:11434", "0.0.0.0", 8000) == ("::", 11434)
    assert parse("[::1]", "0.0.0.0", 8000) == ("::1", 8000)
    for invalid in (":9000", "::1", "host:0", "host:70000", "http://127.0.0.1:8000", "127.0.0.1:8000/", "[::1",
                    "[::1]x", ""):
        assert parse(invalid, "0.0.0.0", 8000) is None, invalid


# ---------------------------------------------------------------- models, pulls and refusals
def test_5_3_reads_the_first_existing_manifests_dir_and_pulls_into_xdg_data_home(
        layout: Layout, run: Callable[..., Standin]) -> None:
    (layout.data_home / "hailo-ollama").mkdir(parents=True)  # no models/manifests here: skipped in 5.3
    layout.manifests()
    standin = run_53(layout, run)
    assert standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).json() == {"status": "success"}
    assert (layout.data_home / "hailo-ollama" / "models" / "blob" / blob_name("qwen2:1.5b")).is_file()
    assert not layout.blob.exists()
    assert [m["name"] for m in standin.get("/api/tags").json()["models"]] == ["qwen2:1.5b"]


def test_5_3_reads_manifests_without_template_params_and_shows_their_license(
        layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.manifests() / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    del data["template_params"], data["generation_params"]
    path.write_text(json.dumps({**data, "license": "apache-2.0"}))
    layout.put_blob("qwen2:1.5b", layout.data_home / "hailo-ollama" / "models" / "blob")
    body = run_53(layout, run).post("/api/show", {"model": "qwen2:1.5b"}).json()
    assert list(body) == ["license", "modelfile", "parameters", "details", "model_info", "modified_at"]
    assert (body["license"], body["parameters"]) == ("apache-2.0", "")


def test_5_3_answers_404_for_an_unknown_model(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    for path, body in (("/api/chat", {**CHAT, "model": "nope:1b"}), ("/api/show", {"model": "nope:1b"}),
                       ("/api/pull", {"model": "nope:1b"}), ("/api/chat", CHAT),
                       ("/v1/chat/completions", {**CHAT, "model": "nope:1b"})):
        response = standin.post(path, body)
        assert response.status_code == 404
        assert response.json()["error"].endswith("not found")


def test_5_3_takes_the_library_host_from_the_environment_and_reports_pull_errors_as_json(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run, HAILO_OLLAMA_LIBRARY_HOST="nonexistent.invalid")
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and response.headers["Content-Type"] == "application/json"
    assert "Call to getaddrinfo() failed" in response.json()["error"]


def test_5_3_reports_a_blob_missing_from_the_library_on_the_stream_and_survives(
        layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.manifests() / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    del data["standin"]  # the stand-in library has no blob for it: HTTP 404
    path.write_text(json.dumps(data))
    standin = run_53(layout, run)
    assert pull_lines(standin.port, {"model": "qwen2:1.5b"}, complete=True) == [
        {"error": "failed to download blob: HTTP 404"}]
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert (response.status_code, response.json()) == (500, {"error": "failed to download blob: HTTP 404"})
    assert standin.alive()


def test_5_3_ends_a_streaming_pull_with_the_zero_chunk(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    lines = ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"status": "success"}]


def test_5_3_still_aborts_a_streaming_pull_from_an_unreachable_library(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    (layout.control / "library-unreachable").touch()
    with pytest.raises(requests.exceptions.RequestException):
        ndjson(standin.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True))
    assert_aborted(standin, "Can't connect")


def test_5_3_answers_400_to_a_chat_completion_it_refuses(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    response = standin.post("/v1/chat/completions", {**CHAT, "stream": True})
    assert response.status_code == 400 and "streaming not supported" in response.json()["error"]


# ---------------------------------------------------------------- device
def test_5_3_opens_h1x_0_and_not_hailo0(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.put_blob("qwen2:1.5b", layout.data_home / "hailo-ollama" / "models" / "blob")
    (layout.dev / "hailo0").touch()
    standin = run_53(layout, run)
    assert standin.post("/api/chat", CHAT).status_code == 500
    assert standin.post("/api/chat", {"model": "qwen2:1.5b", "keep_alive": 0}).status_code == 200
    (layout.dev / "h1x-0").touch()
    assert ndjson(standin.post("/api/chat", CHAT))[-1]["done"] is True


def test_5_3_shares_the_device_only_with_a_vdevice_group_id(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.put_blob("qwen2:1.5b", layout.data_home / "hailo-ollama" / "models" / "blob")
    node = layout.dev / "h1x-0"
    node.touch()
    with open(node, "r+") as holder:
        fcntl.flock(holder, fcntl.LOCK_SH)  # another program sharing the device
        standin = run_53(layout, run, HAILO_OLLAMA_VDEVICE_GROUP_ID="shared")
        assert ndjson(standin.post("/api/chat", CHAT))[-1]["done"] is True
        standin.kill()
        alone = run_53(layout, run)
        assert alone.post("/api/chat", CHAT).status_code == 500
