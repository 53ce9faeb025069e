"""Tests of the hailo-ollama stand-in (tests/standin/hailo-ollama) and of its test packages.

Each test starts the stand-in as a subprocess on a free loopback port, with its
own temporary XDG tree, control dir and /dev, and proves one behaviour of the
real server (see /work/shared/upstream.md and README.md beside this file).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
import requests

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "hailo-ollama"
MANIFESTS = HERE / "manifests-5.1.1"
ADDED = HERE / "manifests-5.1.2-added"
MANIFESTS_54 = HERE / "manifests-5.4.0"
FIVE = ["deepseek_r1_distill_qwen:1.5b", "llama3.2:3b", "qwen2.5-coder:1.5b", "qwen2.5-instruct:1.5b", "qwen2:1.5b"]
SIX_54 = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]
LOG_LINE = re.compile(r"^\x1b\[(32m I|41m E|45m W) \x1b\[0m\|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d{16}\| ")
FAST = {"HAILO_STANDIN_PULL_CHUNK_DELAY": "0", "HAILO_STANDIN_TOKEN_DELAY": "0",
        "HAILO_STANDIN_LOAD_DELAY": "0", "HAILO_STANDIN_VDEVICE_DELAY": "0.05"}
CHAT = {"model": "qwen2:1.5b", "messages": [{"role": "user", "content": "hi"}]}
ABORTED, SEGFAULT = -signal.SIGABRT, -signal.SIGSEGV


def load_standin() -> Any:
    """Import the stand-in as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("hailo_ollama_standin", str(STANDIN))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


STANDIN_MODULE = load_standin()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manifest(name: str, root: Path = MANIFESTS) -> dict[str, Any]:
    """A shipped manifest by model name."""
    model, tag = name.split(":")
    return json.loads((root / model / tag / "manifest.json").read_text())


def blob_name(name: str) -> str:
    """sha256_<hex> of a shipped model."""
    return "sha256_" + manifest(name)["hef_h10h"]


class Layout:
    """A temporary XDG tree, control dir, /dev and working directory for one stand-in."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.config_home = self.home / ".config"
        self.data_home = self.home / ".local" / "share"
        self.etc_xdg = tmp / "etc-xdg"
        self.usr_share = tmp / "usr-share"
        self.control = tmp / "control"
        self.dev = tmp / "dev"
        self.cwd = tmp / "cwd"
        for directory in (self.home, self.etc_xdg, self.usr_share, self.control, self.dev, self.cwd):
            directory.mkdir(parents=True)
        self.port = free_port()
        self.env = {
            "PATH": "/usr/bin:/bin", "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.config_home), "XDG_CONFIG_DIRS": str(self.etc_xdg),
            "XDG_DATA_HOME": str(self.data_home), "XDG_DATA_DIRS": str(self.usr_share),
            "HAILO_STANDIN_CONTROL_DIR": str(self.control), "HAILO_STANDIN_DEV_DIR": str(self.dev), **FAST,
        }

    def config(self, base: Optional[Path] = None, text: Optional[str] = None, **changes: Any) -> Path:
        """Write <base>/hailo-ollama/hailo-ollama.json (a 5.1 config on our port unless text is given)."""
        data: dict[str, Any] = {"server": {"host": "127.0.0.1", "port": self.port},
                                "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
        data.update(changes)
        path = (base or self.etc_xdg) / "hailo-ollama" / "hailo-ollama.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data) if text is None else text)
        return path

    def manifests(self, base: Optional[Path] = None, names: Optional[list[str]] = None,
                  source: Path = MANIFESTS) -> Path:
        """Copy shipped manifests into <base>/hailo-ollama/models/manifests."""
        target = (base or self.usr_share) / "hailo-ollama" / "models" / "manifests"
        for name in names or (SIX_54 if source == MANIFESTS_54 else FIVE):
            model, tag = name.split(":")
            (target / model / tag).mkdir(parents=True, exist_ok=True)
            shutil.copy(source / model / tag / "manifest.json", target / model / tag / "manifest.json")
        return target

    @property
    def blob(self) -> Path:
        """The 5.1 blob dir of the standard layout."""
        return self.usr_share / "hailo-ollama" / "models" / "blob"

    def put_blob(self, name: str, blob_dir: Optional[Path] = None) -> Path:
        """Place the valid blob of a model as if it had been pulled."""
        spec = manifest(name)["standin"]
        target = (blob_dir or self.blob) / blob_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(STANDIN_MODULE.blob_bytes(spec["blob_seed"], spec["blob_size"]))
        return target

    def standard(self) -> "Layout":
        """Config in XDG_CONFIG_DIRS, the five manifests in XDG_DATA_DIRS (like the real package)."""
        self.config()
        self.manifests()
        return self


class Standin:
    """One stand-in process with its output collected in the background."""

    def __init__(self, layout: Layout, env: dict[str, str], args: tuple[str, ...],
                 uid: Optional[int] = None) -> None:
        full_env = {**layout.env, **env}
        self.proc = subprocess.Popen([str(STANDIN), *args], cwd=layout.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={k: v for k, v in full_env.items() if v is not None},
                                     user=uid, group=uid, extra_groups=[] if uid is not None else None)
        self.port = layout.port
        self.url = f"http://127.0.0.1:{layout.port}"
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, sink: list[str]) -> None:
        for line in iter(stream.readline, b""):
            sink.append(line.decode("utf-8", "replace"))

    @property
    def out(self) -> str:
        return "".join(self._out)

    @property
    def err(self) -> str:
        return "".join(self._err)

    def wait_running(self, timeout: float = 10) -> "Standin":
        """Wait for the `Server running on port` line."""
        deadline = time.monotonic() + timeout
        while "Server running on port" not in self.out:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.wait_exit(1)
                raise AssertionError(f"stand-in did not start (rc={self.proc.returncode})\n{self.out}\n{self.err}")
            time.sleep(0.01)
        return self

    def wait_exit(self, timeout: float = 10) -> Optional[int]:
        """Wait for the process to end and its output to be read; the return code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(2)
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=10, **kwargs)

    def delete(self, path: str, body: Any) -> requests.Response:
        return requests.delete(self.url + path, json=body, timeout=10)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


@pytest.fixture
def run(layout: Layout) -> Iterator[Callable[..., Standin]]:
    """Start stand-ins (waiting for them to listen unless wait=False); all are killed afterwards."""
    started: list[Standin] = []

    def start(env: Optional[dict[str, Any]] = None, args: tuple[str, ...] = (), wait: bool = True) -> Standin:
        standin = Standin(layout, env or {}, args)
        started.append(standin)
        return standin.wait_running() if wait else standin

    yield start
    for standin in started:
        standin.kill()


@pytest.fixture
def server(layout: Layout, run: Callable[..., Standin]) -> Standin:
    """A 5.1 stand-in on the standard layout."""
    layout.standard()
    return run()


def assert_aborted(standin: Standin, *messages: str) -> None:
    """It died like an uncaught C++ exception (SIGABRT), saying what."""
    assert standin.wait_exit() == ABORTED, standin.out + standin.err
    assert "terminate called after throwing an instance of" in standin.err
    for message in messages:
        assert message in standin.err


def eventually(predicate: Callable[[], bool], timeout: float = 5) -> bool:
    """Poll a predicate on output that a reader thread collects."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ndjson(response: requests.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.iter_lines() if line]


def raw_http(port: int, method: str, path: str, body: Optional[dict[str, Any]] = None,
             keep_alive: bool = False) -> tuple[str, bytes]:
    """One request (Connection: close unless keep_alive); the header block and the undecoded body, read until
    the server closes the connection."""
    data = json.dumps(body).encode() if body is not None else b""
    connection = "" if keep_alive else "Connection: close\r\n"
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head.decode(), rest


def dechunk(raw: bytes, complete: bool = True) -> list[bytes]:
    """The chunks of a chunked body: ending with the zero chunk, or (complete=False) with the last chunk's data
    and nothing after it, as a 5.1 streaming pull ends."""
    chunks = []
    while True:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert complete and raw == b"\r\n"
            return chunks
        chunks.append(raw[:size])
        if not complete and len(raw) == size:
            return chunks
        assert raw[size:size + 2] == b"\r\n"
        raw = raw[size + 2:]


def pull_lines(port: int, body: dict[str, Any], complete: bool) -> list[dict[str, Any]]:
    """The NDJSON lines of a streaming pull read off the wire (requests refuses a 5.1 one: it never ends)."""
    head, raw = raw_http(port, "POST", "/api/pull", body)
    assert head.startswith("HTTP/1.1 200"), head
    return [json.loads(chunk) for chunk in dechunk(raw, complete)]


# ---------------------------------------------------------------- start-up, logs, argv
def test_it_logs_like_oatpp_a_colour_block_local_time_epoch_microseconds_then_tag_and_message(
        server: Standin) -> None:
    line = next(line for line in server.out.splitlines() if "Server running on port" in line)
    assert LOG_LINE.match(line), repr(line)
    assert line.startswith("\x1b[32m I \x1b[0m|") and line.endswith(f"| MyApp:Server running on port {server.port}")
    date, clock, micros = line.split("|")[1].split()
    assert abs(int(micros) / 1e6 - time.time()) < 60
    assert f"{date} {clock}" == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(micros) // 1_000_000))


def test_it_names_the_port_it_really_listens_on_when_configured_with_port_0(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": 0})
    standin = run(wait=False)
    deadline = time.monotonic() + 10
    while "Server running on port" not in standin.out and time.monotonic() < deadline:
        time.sleep(0.02)
    port = int(standin.out.split("Server running on port ")[1].split()[0])
    assert port != 0
    assert requests.get(f"http://127.0.0.1:{port}/api/version", timeout=5).json() == {"version": "0.5.1"}


def test_it_ignores_its_command_line_arguments(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    standin = run(args=("--version", "--help", "serve"))
    assert standin.get("/api/version").json() == {"version": "0.5.1"}


def test_the_mode_defaults_to_5_1_which_needs_a_config_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert_aborted(run(wait=False), "hailo-ollama directory not found")


def test_the_mode_comes_from_the_control_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    (layout.control / "mode").write_text("5.3\nanything after the first line is ignored\n")
    standin = run({"OLLAMA_HOST": f"127.0.0.1:{layout.port}"})
    assert "behaving as 5.3" in standin.out


def test_the_mode_environment_variable_overrides_the_control_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.control / "mode").write_text("5.3\n")
    assert "behaving as 5.1" in run({"HAILO_STANDIN_MODE": "5.1"}).out


@pytest.mark.parametrize("mode", ["6.0", "5.2", "5.5", "5.4x"])
def test_an_unknown_mode_is_refused_with_exit_2(layout: Layout, run: Callable[..., Standin], mode: str) -> None:
    standin = run({"HAILO_STANDIN_MODE": mode}, wait=False)
    assert standin.wait_exit() == 2
    assert "unknown mode" in standin.err and "5.1, 5.3 or 5.4" in standin.err


@pytest.mark.parametrize("mode", ["5.4", "5.4.0"])
def test_the_mode_5_4_is_accepted_with_or_without_a_patch_level(
        layout: Layout, run: Callable[..., Standin], mode: str) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run({"HAILO_STANDIN_MODE": mode, "OLLAMA_HOST": f"127.0.0.1:{layout.port}"})
    assert "behaving as 5.4" in standin.out
    assert standin.get("/hailo/v1/list").json() == {"models": SIX_54}


# ---------------------------------------------------------------- 5.1 configuration
def test_the_config_in_xdg_config_home_wins_over_xdg_config_dirs(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.config(layout.config_home, server={"host": "127.0.0.1", "port": free_port()})
    home_port = json.loads((layout.config_home / "hailo-ollama" / "hailo-ollama.json").read_text())["server"]["port"]
    standin = run(wait=False)
    standin.port = home_port
    standin.wait_running()
    assert f"Server running on port {home_port}" in standin.out


def test_the_first_config_dir_with_a_hailo_ollama_subdir_wins_even_without_the_file(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.config_home / "hailo-ollama").mkdir(parents=True)
    assert_aborted(run(wait=False), "json.exception.parse_error")


def test_a_later_config_dir_is_used_when_the_earlier_ones_lack_the_subdir(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    first, second = layout.tmp / "first", layout.tmp / "second"
    first.mkdir()
    layout.config(second)
    assert run({"XDG_CONFIG_DIRS": f"{first}:{second}"}).get("/").status_code == 200


def test_a_missing_config_dir_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert_aborted(run(wait=False), "std::runtime_error", "hailo-ollama directory not found")


def test_a_config_dir_without_the_json_file_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    (layout.etc_xdg / "hailo-ollama").mkdir()
    assert_aborted(run(wait=False), "parse_error", "empty input")


def test_bad_json_in_the_config_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(text='{"server": {"host": "127.0.0.1", ')
    assert_aborted(run(wait=False), "parse_error")


def test_a_missing_key_aborts_naming_the_key(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    path = layout.config()
    data = json.loads(path.read_text())
    del data["main_poll_time_ms"]
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "key 'main_poll_time_ms' not found")


def test_a_string_port_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": str(layout.port)})
    assert_aborted(run(wait=False), "type must be number, but is string")


def test_a_port_outside_16_bits_is_truncated_as_cpp_does_and_the_server_starts(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": layout.port + 65536},
                  library={"host": "dev-public.hailo.ai", "port": -1}, main_poll_time_ms=65536 + 100)
    standin = run()
    assert f"Server running on port {layout.port}" in standin.out
    assert standin.get("/api/version").status_code == 200


def test_16_bit_values_keep_their_low_bits_and_floats_are_truncated() -> None:
    as_u16 = STANDIN_MODULE.as_u16
    assert [as_u16(70000), as_u16(-1), as_u16(443.7), as_u16(True), as_u16(8000)] == [4464, 65535, 443, 1, 8000]
    with pytest.raises(STANDIN_MODULE.StartupError, match="type must be number, but is string"):
        as_u16("8000")


def test_a_host_name_that_resolves_to_ipv4_is_accepted(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "localhost", "port": layout.port})
    assert run().get("/").text == "hailo-ollama is running"


def test_5_1_aborts_on_an_ipv6_listen_host_because_it_binds_ipv4_only(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "::", "port": layout.port})
    standin = run(wait=False)
    assert_aborted(standin, "Call to getaddrinfo() failed.")
    assert "Error. Call to getaddrinfo() failed with result=-9: Success" in standin.out


# ---------------------------------------------------------------- binding
def test_a_port_in_use_aborts_with_couldnt_bind_after_an_error_line_on_stdout(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run(wait=False)
        assert_aborted(standin, "Couldn't bind Address already in use")
    line = standin.out.splitlines()[-1]
    assert LOG_LINE.match(line) and line.startswith("\x1b[41m E ")
    assert line.endswith("| [oatpp::network::tcp::server::ConnectionProvider::instantiateServer()]:"
                         "Error. Couldn't bind. Address already in use")


def test_the_port_is_bound_before_the_data_dir_is_looked_up(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()  # no data dir at all
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run(wait=False)
        assert_aborted(standin, "Couldn't bind")
    assert "hailo-ollama directory not found" not in standin.err


# ---------------------------------------------------------------- 5.1 data dir
def test_manifests_come_only_from_the_first_data_dir(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.manifests(layout.data_home, ["qwen2:1.5b"])
    standin = run()
    assert standin.get("/hailo/v1/list").json() == {"models": ["qwen2:1.5b"]}
    assert (layout.data_home / "hailo-ollama" / "models" / "blob").is_dir()
    assert not layout.blob.exists()


def test_a_later_data_dir_is_used_when_the_earlier_ones_lack_the_subdir(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    empty, shared = layout.tmp / "empty", layout.tmp / "shared"
    empty.mkdir()
    layout.manifests(shared)
    standin = run({"XDG_DATA_DIRS": f"{empty}:{shared}"})
    assert standin.get("/hailo/v1/list").json() == {"models": FIVE}


def test_a_missing_data_dir_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    assert_aborted(run(wait=False), "hailo-ollama directory not found")


def test_a_data_dir_without_models_aborts_even_when_a_later_one_is_complete(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.data_home / "hailo-ollama").mkdir(parents=True)
    manifests = layout.data_home / "hailo-ollama" / "models" / "manifests"
    assert_aborted(run(wait=False), "filesystem error: recursive directory iterator cannot open directory",
                   f"[{manifests}]")
    assert not (layout.data_home / "hailo-ollama" / "models").exists()


def test_a_models_dir_without_manifests_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    (layout.usr_share / "hailo-ollama" / "models" / "blob").mkdir(parents=True)
    assert_aborted(run(wait=False), "recursive directory iterator cannot open directory")


@pytest.mark.parametrize("where", [".gitkeep", "qwen2/.gitkeep", "qwen2/1.5b/README"])
def test_any_file_under_manifests_that_is_not_a_manifest_aborts(
        layout: Layout, run: Callable[..., Standin], where: str) -> None:
    layout.standard()
    (layout.usr_share / "hailo-ollama" / "models" / "manifests" / where).write_text("")
    assert_aborted(run(wait=False))


def test_any_valid_manifest_file_counts_and_is_named_after_its_two_parent_dirs(
        layout: Layout, run: Callable[..., Standin]) -> None:
    manifests = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests"
    shutil.copy(manifests / "qwen2" / "1.5b" / "manifest.json", manifests / "qwen2" / "1.5b" / "manifest.json.bak")
    (manifests / "extra" / "7b").mkdir(parents=True)
    shutil.copy(manifests / "qwen2" / "1.5b" / "manifest.json", manifests / "extra" / "7b" / "any-name.json")
    assert run().get("/hailo/v1/list").json() == {"models": sorted(FIVE + ["extra:7b"])}


def test_a_manifest_with_a_generation_parameter_of_the_wrong_type_aborts(
        layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests" / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    data["generation_params"]["temperature"] = "hot"
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "[json.exception.type_error.302] type must be number, but is string")


def test_a_manifest_without_hef_h10h_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests" / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    del data["hef_h10h"]
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "key 'hef_h10h' not found")


def test_the_blob_dir_is_created_when_missing_but_not_recursively(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    run()
    assert layout.blob.is_dir()
    assert oct(layout.blob.stat().st_mode & 0o777) == "0o755"


def test_a_file_where_the_blob_dir_goes_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.blob.write_text("")
    assert_aborted(run(wait=False), "cannot create directory")


def test_a_read_only_blob_dir_still_starts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.blob.mkdir()
    layout.blob.chmod(0o555)
    assert run().get("/hailo/v1/list").json() == {"models": FIVE}


def test_symlinked_model_dirs_are_not_followed_but_symlinked_manifest_files_are(
        layout: Layout, run: Callable[..., Standin]) -> None:
    elsewhere = layout.manifests(layout.tmp / "elsewhere")
    manifests = layout.usr_share / "hailo-ollama" / "models" / "manifests"
    (manifests / "qwen2").mkdir(parents=True)
    (manifests / "qwen2" / "1.5b").symlink_to(elsewhere / "qwen2" / "1.5b")  # a symlinked dir: ignored
    (manifests / "llama3.2" / "3b").mkdir(parents=True)
    (manifests / "llama3.2" / "3b" / "manifest.json").symlink_to(elsewhere / "llama3.2" / "3b" / "manifest.json")
    layout.config()
    assert run().get("/hailo/v1/list").json() == {"models": ["llama3.2:3b"]}


def test_a_manifests_dir_that_is_itself_a_symlink_is_read(layout: Layout, run: Callable[..., Standin]) -> None:
    elsewhere = layout.manifests(layout.tmp / "elsewhere")
    (layout.usr_share / "hailo-ollama" / "models").mkdir(parents=True)
    (layout.usr_share / "hailo-ollama" / "models" / "manifests").symlink_to(elsewhere)
    layout.config()
    assert run().get("/hailo/v1/list").json() == {"models": FIVE}


# ---------------------------------------------------------------- 5.3
def run_53(layout: Layout, run: Callable[..., Standin], **env: Any) -> Standin:
    return run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}", **env})


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


# ---------------------------------------------------------------- 5.4
def run_54(layout: Layout, run: Callable[..., Standin], **env: Any) -> Standin:
    return run({"HAILO_STANDIN_MODE": "5.4", "OLLAMA_HOST": f"127.0.0.1:{layout.port}", **env})


def blob_dir_54(layout: Layout) -> Path:
    return layout.data_home / "hailo-ollama" / "models" / "blob"


def hef_54(name: str) -> tuple[str, bytes]:
    """The hef_filename of a shipped 5.4 model and the bytes the stand-in library serves for it."""
    data = manifest(name, MANIFESTS_54)
    return data["hef_filename"], STANDIN_MODULE.blob_bytes(data["standin"]["blob_seed"], data["standin"]["blob_size"])


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
                             f"  - No mapping for HTTP-method: '{method}', URL: '{path}'\n  - Error processing request\n")


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
        layout: Layout, server: Standin, content_type: Optional[str]) -> None:
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


# ---------------------------------------------------------------- NDJSON framing
def test_streamed_pull_is_chunked_ndjson_with_crlf_lines(server: Standin) -> None:
    head, body = raw_http(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"})
    assert head.startswith("HTTP/1.1 200")
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/x-ndjson" in head
    chunks = dechunk(body, complete=False)
    assert all(chunk.endswith(b"\r\n") and chunk.count(b"\n") == 1 for chunk in chunks)
    assert json.loads(chunks[-1]) == {"status": "success"}


def test_streamed_chat_is_chunked_ndjson_with_crlf_lines(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    head, body = raw_http(server.port, "POST", "/api/chat", CHAT)
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/x-ndjson" in head
    chunks = dechunk(body)
    assert all(chunk.endswith(b"\r\n") for chunk in chunks)
    assert json.loads(chunks[-1])["done"] is True


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


# ---------------------------------------------------------------- a library on the LAN: HTTPS


def load_library_process() -> Any:
    """tests/standin/library_process.py, the library launcher the unit tests share."""
    spec = importlib.util.spec_from_file_location("standin_library_process", HERE / "library_process.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LIBRARY_PROCESS = load_library_process()
Library = LIBRARY_PROCESS.LibraryProcess


@pytest.fixture
def library() -> Iterator[Callable[..., Library]]:
    started: list[Library] = []

    def start(*args: str, manifests: tuple[Path, ...] = (MANIFESTS, MANIFESTS_54)) -> Library:
        """The library for the blobs of MANIFESTS (the 5.1 and 5.4 ones by default)."""
        started.append(Library(*args, manifests=manifests))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def blob_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


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
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"error": "hash verification failed for downloaded blob"}]
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
    assert 290 < (expires - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)).total_seconds() < 301  # 5 minutes from the request
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
    for extra, error in (({"stream": True}, "streaming not supported on this endpoint. Use /api/chat endpoint instead."),
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


# ---------------------------------------------------------------- signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_exits_0_quickly_with_an_idle_keep_alive_client(server: Standin, signum: int) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")  # the connection stays open, idle
        started = time.monotonic()
        server.proc.send_signal(signum)
        assert server.wait_exit(5) == 0
        assert time.monotonic() - started < 1.5
    lines = [line.split("| ", 1)[-1] for line in server.out.splitlines()]
    stop = lines.index("MyApp:Stop signal received, please wait for server shutdown")
    assert lines[stop + 1:stop + 5] == ["generation_context:stop received", "", "Environment:", "objectsCount = 0"]


# ---------------------------------------------------------------- HailoRT log file
def test_hailort_log_is_created_in_the_working_directory_and_home(layout: Layout, server: Standin) -> None:
    assert (layout.cwd / "hailort.log").is_file()
    assert (layout.home / ".hailo" / "hailort" / "hailort.log").is_file()
    assert "HailoRT warning" not in server.err


def test_hailort_log_goes_to_hailort_logger_path_when_set(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.tmp / "logs").mkdir()
    run({"HAILORT_LOGGER_PATH": str(layout.tmp / "logs")})
    assert (layout.tmp / "logs" / "hailort.log").is_file() and not (layout.cwd / "hailort.log").exists()


def test_an_unwritable_working_directory_gives_the_hailort_warning_at_every_start(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.cwd / "hailort.log").mkdir()  # cannot be created as a file, even by root
    warning = ("HailoRT warning: Cannot create log file hailort.log! "
               "Please check the directory . write permissions.")
    first = run()
    assert warning in first.err and first.get("/").status_code == 200
    first.kill()
    assert warning in run().err


def test_a_missing_home_hailo_dir_that_cannot_be_made_is_no_failure(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.home / ".hailo").write_text("")  # a file where the directory would go
    assert run().get("/").status_code == 200


# ---------------------------------------------------------------- shipped data and packages
@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("manifest.json")) + sorted(ADDED.rglob("manifest.json")),
                         ids=lambda p: f"{p.parent.parent.name}:{p.parent.name}")
def test_each_shipped_manifest_digest_is_the_sha256_of_its_synthesized_blob(path: Path) -> None:
    data = json.loads(path.read_text())
    spec = data["standin"]
    assert spec["blob_seed"] == f"{path.parent.parent.name}:{path.parent.name}"
    assert 1 << 20 <= spec["blob_size"] <= 8 << 20
    assert hashlib.sha256(STANDIN_MODULE.blob_bytes(spec["blob_seed"], spec["blob_size"])).hexdigest() == data["hef_h10h"]
    assert {"bos_token", "eos_token", "chat_template"} <= set(data["template_params"])
    assert data["details"]["format"] == "hef"


@pytest.mark.parametrize("path", sorted(MANIFESTS_54.rglob("manifest.json")),
                         ids=lambda p: f"{p.parent.parent.name}:{p.parent.name}")
def test_each_shipped_5_4_manifest_names_its_hef_and_the_blob_the_stand_in_library_serves(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["hef_filename"].endswith(".hef") and "hef_h10h" not in data and "template_params" not in data
    assert data["standin"]["blob_seed"] == f"{path.parent.parent.name}:{path.parent.name}@5.4"
    assert 1 << 20 <= data["standin"]["blob_size"] <= 8 << 20
    assert data["details"]["format"] == "hef" and data["license"] is None


def test_the_shipped_5_4_0_manifests_are_the_six_hailo_ollama_models() -> None:
    names = sorted(f"{p.parent.parent.name}:{p.parent.name}" for p in MANIFESTS_54.rglob("manifest.json"))
    assert names == SIX_54
    assert [p for p in MANIFESTS_54.rglob("*") if p.is_file() and p.name != "manifest.json"] == []


def test_the_shipped_5_1_1_manifests_are_the_five_models() -> None:
    names = sorted(f"{p.parent.parent.name}:{p.parent.name}" for p in MANIFESTS.rglob("manifest.json"))
    assert names == FIVE
    assert [p for p in MANIFESTS.rglob("*") if p.is_file() and p.name != "manifest.json"] == []


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    out = tmp_path_factory.mktemp("debs")
    subprocess.run([str(HERE / "build-debs"), str(out)], check=True, capture_output=True)
    return out


def test_build_debs_makes_exactly_the_two_test_packages(debs: Path) -> None:
    assert sorted(p.name for p in debs.iterdir()) == [
        "hailo-gen-ai-model-zoo_5.1.1-1_all.deb", "hailo-gen-ai-model-zoo_5.1.2-1_all.deb"]


@pytest.mark.parametrize("version,models", [("5.1.1-1", FIVE), ("5.1.2-1", sorted(FIVE + ["qwen3:1.7b"]))])
def test_each_deb_ships_the_server_manifests_conffile_and_docs(debs: Path, version: str, models: list[str]) -> None:
    deb = str(debs / f"hailo-gen-ai-model-zoo_{version}_all.deb")
    assert dpkg_deb("-f", deb, "Package", "Version", "Architecture", "Depends").splitlines() == [
        "Package: hailo-gen-ai-model-zoo", f"Version: {version}", "Architecture: all", "Depends: python3"]
    assert "TEST STAND-IN" in dpkg_deb("-f", deb, "Description")
    listing = {line.split()[-1]: line.split()[:2] for line in dpkg_deb("-c", deb).splitlines()}
    assert listing["./usr/bin/hailo-ollama"] == ["-rwxr-xr-x", "root/root"]
    assert listing["./usr/bin/hailo-ollama-standin-library"] == ["-rwxr-xr-x", "root/root"]
    shipped = sorted(f"{p.split('/')[-3]}:{p.split('/')[-2]}" for p in listing if p.endswith("/manifest.json"))
    assert shipped == models
    assert all(p.startswith("./usr/share/hailo-ollama/models/manifests/") for p in listing if p.endswith(".json")
               and "manifests" in p)
    for path in ("./etc/xdg/hailo-ollama/hailo-ollama.json", "./usr/share/doc/hailo-gen-ai-model-zoo/copyright",
                 "./usr/share/doc/hailo-gen-ai-model-zoo/changelog.Debian.gz"):
        assert listing[path] == ["-rw-r--r--", "root/root"], path
    control = subprocess.run(f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles", shell=True,
                             check=True, capture_output=True, text=True).stdout
    assert control == "/etc/xdg/hailo-ollama/hailo-ollama.json\n"
    config = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./etc/xdg/hailo-ollama/hailo-ollama.json",
                            shell=True, check=True, capture_output=True, text=True).stdout
    assert json.loads(config) == {"server": {"host": "0.0.0.0", "port": 8000},
                                  "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
    server = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/hailo-ollama", shell=True,
                            check=True, capture_output=True).stdout
    assert server == STANDIN.read_bytes()
    library = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/hailo-ollama-standin-library",
                             shell=True, check=True, capture_output=True).stdout
    assert library == LIBRARY_PROCESS.PROGRAM.read_bytes()


def test_build_debs_is_reproducible(debs: Path, tmp_path: Path) -> None:
    subprocess.run([str(HERE / "build-debs"), str(tmp_path)], check=True, capture_output=True)
    for deb in debs.iterdir():
        assert (tmp_path / deb.name).read_bytes() == deb.read_bytes(), deb.name


def test_build_debs_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", str(HERE / "build-debs")], check=True)
