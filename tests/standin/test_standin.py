"""Tests of the hailo-ollama stand-in (tests/standin/hailo-ollama) and of its test packages.

Each test starts the stand-in as a subprocess on a free loopback port, with its
own temporary XDG tree, control dir and /dev, and proves one behaviour of the
real server (see /work/shared/upstream.md and README.md beside this file).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.machinery
import importlib.util
import json
import os
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
FIVE = ["deepseek_r1_distill_qwen:1.5b", "llama3.2:3b", "qwen2.5-coder:1.5b", "qwen2.5-instruct:1.5b", "qwen2:1.5b"]
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

    def manifests(self, base: Optional[Path] = None, names: Optional[list[str]] = None) -> Path:
        """Copy shipped manifests into <base>/hailo-ollama/models/manifests."""
        target = (base or self.usr_share) / "hailo-ollama" / "models" / "manifests"
        for name in names or FIVE:
            model, tag = name.split(":")
            (target / model / tag).mkdir(parents=True, exist_ok=True)
            shutil.copy(MANIFESTS / model / tag / "manifest.json", target / model / tag / "manifest.json")
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


def ndjson(response: requests.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.iter_lines() if line]


def raw_http(port: int, method: str, path: str, body: Optional[dict[str, Any]] = None) -> tuple[str, bytes]:
    """One request with Connection: close; the header block and the undecoded body."""
    data = json.dumps(body).encode() if body is not None else b""
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head.decode(), rest


def dechunk(raw: bytes) -> list[bytes]:
    """The chunks of a chunked body (ending with the zero chunk)."""
    chunks = []
    while True:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert raw == b"\r\n"
            return chunks
        chunks.append(raw[:size])
        assert raw[size:size + 2] == b"\r\n"
        raw = raw[size + 2:]


# ---------------------------------------------------------------- start-up, logs, argv
def test_it_logs_server_running_on_its_port_with_ansi_colour_codes(server: Standin) -> None:
    line = next(line for line in server.out.splitlines() if "Server running on port" in line)
    assert f"MyApp:Server running on port {server.port}" in line
    assert "I |" in line and "\x1b[" in line


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


def test_an_unknown_mode_is_refused_with_exit_2(layout: Layout, run: Callable[..., Standin]) -> None:
    standin = run({"HAILO_STANDIN_MODE": "6.0"}, wait=False)
    assert standin.wait_exit() == 2
    assert "unknown mode" in standin.err


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


@pytest.mark.parametrize("change", [
    {"server": {"host": "127.0.0.1", "port": 65536}},
    {"server": {"host": "127.0.0.1", "port": -1}},
    {"library": {"host": "dev-public.hailo.ai", "port": 70000}},
    {"main_poll_time_ms": 65536},
], ids=["server-port", "negative-port", "library-port", "poll-time"])
def test_a_value_outside_16_bit_unsigned_aborts(layout: Layout, run: Callable[..., Standin], change: dict) -> None:
    layout.manifests()
    layout.config(**change)
    assert_aborted(run(wait=False), "out_of_range")


def test_a_host_name_that_resolves_to_ipv4_is_accepted(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "localhost", "port": layout.port})
    assert run().get("/").text == "hailo-ollama is running"


def test_5_1_aborts_on_an_ipv6_listen_host_because_it_binds_ipv4_only(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "::", "port": layout.port})
    assert_aborted(run(wait=False), "getaddrinfo")


# ---------------------------------------------------------------- binding
def test_a_port_in_use_aborts_with_couldnt_bind(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        assert_aborted(run(wait=False), "Couldn't bind Address already in use")


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


def test_a_valid_json_file_not_named_manifest_json_aborts_too(layout: Layout, run: Callable[..., Standin]) -> None:
    manifests = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests"
    shutil.copy(manifests / "qwen2" / "1.5b" / "manifest.json", manifests / "qwen2" / "1.5b" / "manifest.json.bak")
    assert_aborted(run(wait=False), "is not a manifest.json")


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


def test_5_3_needs_no_config_file_and_listens_on_ollama_host(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    assert standin.get("/hailo/v1/list").json() == {"models": FIVE}
    assert not layout.blob.exists()  # 5.3 keeps blobs under XDG_DATA_HOME


def test_5_3_ignores_the_5_1_config_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(text="this is not JSON")
    assert run_53(layout, run).get("/").status_code == 200


@pytest.mark.parametrize("value", ["http://127.0.0.1:{port}", "127.0.0.1:{port}/"])
def test_5_3_accepts_ollama_host_with_a_scheme_or_slash(
        layout: Layout, run: Callable[..., Standin], value: str) -> None:
    layout.manifests()
    assert run_53(layout, run, OLLAMA_HOST=value.format(port=layout.port)).get("/").status_code == 200


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


@pytest.mark.parametrize("value", ["127.0.0.1:notaport", "127.0.0.1:70000", "[::1", "two words"])
def test_5_3_warns_about_an_invalid_ollama_host_and_falls_back_to_port_8000(
        layout: Layout, run: Callable[..., Standin], value: str) -> None:
    layout.manifests()
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": value}, wait=False)
    deadline = time.monotonic() + 5
    while "on port 8000" not in standin.out and standin.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"Invalid OLLAMA_HOST value '{value}'" in standin.out
    assert "0.0.0.0:8000" in standin.out
    if standin.alive():  # port 8000 was free: it serves there
        assert "Server running on port 8000" in standin.out
        assert requests.get("http://127.0.0.1:8000/api/version", timeout=5).status_code == 200
    else:  # port 8000 is taken on this machine: the fallback bind failed
        assert standin.wait_exit() == 1 and "Couldn't bind" in standin.err


def test_5_3_reports_the_vdevice_group_id(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert "VDevice group id 'shared'" in run_53(layout, run, HAILO_OLLAMA_VDEVICE_GROUP_ID="shared").out


def test_5_3_startup_errors_log_fatal_error_and_exit_1(layout: Layout, run: Callable[..., Standin]) -> None:
    standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
    assert standin.wait_exit() == 1
    assert "Fatal error: " in standin.err and "terminate called" not in standin.err


def test_5_3_exits_1_when_the_port_is_in_use(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}"}, wait=False)
        assert standin.wait_exit() == 1
    assert "Fatal error: " in standin.err and "Couldn't bind" in standin.err


def test_5_3_reads_the_first_existing_manifests_dir_and_pulls_into_xdg_data_home(
        layout: Layout, run: Callable[..., Standin]) -> None:
    (layout.data_home / "hailo-ollama").mkdir(parents=True)  # no models/manifests here: skipped in 5.3
    layout.manifests()
    standin = run_53(layout, run)
    assert standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).json() == {"status": "success"}
    assert (layout.data_home / "hailo-ollama" / "models" / "blob" / blob_name("qwen2:1.5b")).is_file()
    assert not layout.blob.exists()
    assert [m["name"] for m in standin.get("/api/tags").json()["models"]] == ["qwen2:1.5b"]


def test_5_3_answers_404_for_an_unknown_model(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run)
    for path, body in (("/api/chat", {**CHAT, "model": "nope:1b"}), ("/api/show", {"model": "nope:1b"}),
                       ("/api/pull", {"model": "nope:1b"}), ("/api/chat", CHAT)):
        response = standin.post(path, body)
        assert response.status_code == 404
        assert response.json()["error"].endswith("not found")


def test_5_3_takes_the_library_host_from_the_environment(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    standin = run_53(layout, run, HAILO_OLLAMA_LIBRARY_HOST="nonexistent.invalid")
    response = standin.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "Can't connect" in response.text


def test_5_3_parses_host_and_port_like_ollama_host() -> None:
    parse = STANDIN_MODULE.parse_host_port
    assert parse("0.0.0.0:11434", "0.0.0.0", 8000) == ("0.0.0.0", 11434)
    assert parse("example.org", "0.0.0.0", 8000) == ("example.org", 8000)
    assert parse(":9000", "0.0.0.0", 8000) == ("0.0.0.0", 9000)
    assert parse("[::]:11434", "0.0.0.0", 8000) == ("::", 11434)
    assert parse("::1", "0.0.0.0", 8000) is None
    assert parse("host:0", "0.0.0.0", 8000) is None


# ---------------------------------------------------------------- endpoints
def test_root_answers_plain_text(server: Standin) -> None:
    response = server.get("/")
    assert (response.status_code, response.text) == (200, "hailo-ollama is running")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_version_is_0_5_1(server: Standin) -> None:
    response = server.get("/api/version")
    assert response.json() == {"version": "0.5.1"}
    assert response.headers["Content-Type"] == "application/json"


def test_the_hailo_list_names_every_manifest(server: Standin) -> None:
    assert server.get("/hailo/v1/list").json() == {"models": FIVE}


def test_tags_lists_only_models_whose_blob_is_present(layout: Layout, server: Standin) -> None:
    assert server.get("/api/tags").json() == {"models": []}
    blob = layout.put_blob("llama3.2:3b")
    models = server.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["llama3.2:3b"]
    assert set(models[0]) == {"name", "model", "modified_at", "size", "details"}
    assert models[0]["size"] == blob.stat().st_size
    assert models[0]["modified_at"].endswith("Z")
    assert models[0]["details"]["parameter_size"] == "3B"


def test_ps_is_empty_before_any_generation(server: Standin) -> None:
    assert server.get("/api/ps").json() == {"models": []}


def test_show_describes_a_model_with_a_blob(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    body = server.post("/api/show", {"model": "qwen2:1.5b"}).json()
    assert {"modelfile", "parameters", "details", "model_info"} <= set(body)
    assert body["details"]["family"] == "qwen2"


@pytest.mark.parametrize("name", ["qwen2:1.5b", "nope:1b"], ids=["no-blob", "unknown"])
def test_show_of_a_model_without_blob_answers_200_with_an_error(server: Standin, name: str) -> None:
    response = server.post("/api/show", {"model": name})
    assert (response.status_code, response.json()) == (200, {"error": f"model '{name}' not found"})


def test_a_streaming_pull_reports_progress_and_lands_the_blob(layout: Layout, server: Standin) -> None:
    response = server.post("/api/pull", {"model": "qwen2:1.5b"}, stream=True)
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = ndjson(response)
    digest, size = manifest("qwen2:1.5b")["hef_h10h"], manifest("qwen2:1.5b")["standin"]["blob_size"]
    pulling = lines[:-2]
    assert len(pulling) > 3 and all(line["status"] == "pulling" and line["digest"] == digest for line in pulling)
    assert [line["completed"] for line in pulling] == sorted(line["completed"] for line in pulling)
    assert pulling[-1]["completed"] == pulling[-1]["total"] == size
    assert lines[-2:] == [{"status": "verifying sha256 digest"}, {"status": "success"}]
    blob = layout.blob / f"sha256_{digest}"
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest
    assert not Path(f"{blob}.tmp").exists()


def test_a_non_streaming_pull_answers_success(layout: Layout, server: Standin) -> None:
    response = server.post("/api/pull", {"name": "llama3.2:3b", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success"})
    assert (layout.blob / blob_name("llama3.2:3b")).is_file()


def test_a_pull_of_a_present_valid_blob_is_skipped(layout: Layout, server: Standin) -> None:
    blob = layout.put_blob("qwen2:1.5b")
    os.utime(blob, (1_000_000_000, 1_000_000_000))
    (layout.control / "library-unreachable").touch()  # not even contacted
    assert ndjson(server.post("/api/pull", {"model": "qwen2:1.5b"})) == [{"status": "success"}]
    assert blob.stat().st_mtime == 1_000_000_000


def test_a_corrupt_blob_is_pulled_again(layout: Layout, server: Standin) -> None:
    blob = layout.put_blob("qwen2:1.5b")
    blob.write_bytes(b"garbage")
    assert server.post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).json() == {"status": "success"}
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == manifest("qwen2:1.5b")["hef_h10h"]


def test_a_pull_of_an_unknown_model_answers_200_with_an_error_in_5_1(server: Standin) -> None:
    response = server.post("/api/pull", {"model": "nope:1b"})
    assert (response.status_code, response.json()) == (200, {"error": "model 'nope:1b' not found"})


def test_a_pull_into_an_unwritable_blob_dir_fails_without_crashing(layout: Layout, server: Standin) -> None:
    Path(f"{layout.blob / blob_name('qwen2:1.5b')}.tmp").mkdir()  # cannot be opened for writing, even by root
    lines = ndjson(server.post("/api/pull", {"model": "qwen2:1.5b"}))
    assert "error" in lines[-1] and "failed to write blob" in lines[-1]["error"]
    response = server.post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "failed to write blob" in response.text
    assert server.alive() and server.get("/api/tags").json() == {"models": []}


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
    assert not blob.exists()
    response = server.delete("/api/delete", {"model": "qwen2:1.5b"})
    assert (response.status_code, response.json()) == (404, {"code": "not_found", "error": "model not found"})
    assert server.delete("/api/delete", {"model": "nope:1b"}).status_code == 404


@pytest.mark.parametrize("path", ["/api/nope", "/v1/models", "/api/pull"])
def test_unmapped_paths_and_methods_answer_404_plain_text(server: Standin, path: str) -> None:
    response = server.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "No mapping for HTTP-method: 'GET'" in response.text


# ---------------------------------------------------------------- content types and bad bodies
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_typed_answers_500_no_suitable_mapper(server: Standin, content_type: str) -> None:
    response = requests.post(server.url + "/api/show", data='{"model": "qwen2:1.5b"}',
                             headers={"Content-Type": content_type}, timeout=5)
    assert response.status_code == 500 and "No suitable mapper" in response.text
    assert server.get("/api/version").status_code == 200


def test_a_json_body_without_content_type_is_accepted(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    response = requests.post(server.url + "/api/show", data=b'{"model": "qwen2:1.5b"}', timeout=5)
    assert response.status_code == 200 and "details" in response.json()


@pytest.mark.parametrize("body", [b"{not json", b"{}", b"", b"[]", b'{"model": 5}'])
def test_bad_json_or_an_empty_object_answers_500_and_the_server_survives(server: Standin, body: bytes) -> None:
    for path in ("/api/show", "/api/pull", "/api/chat", "/api/generate"):
        response = requests.post(server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert response.status_code == 500, path
    assert server.alive() and server.get("/api/version").status_code == 200


def test_keep_alive_must_be_integer_seconds(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    assert server.post("/api/chat", {**CHAT, "keep_alive": "5m"}).status_code == 500


# ---------------------------------------------------------------- NDJSON framing
def test_streamed_pull_is_chunked_ndjson_with_crlf_lines(server: Standin) -> None:
    head, body = raw_http(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"})
    assert head.startswith("HTTP/1.1 200")
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/x-ndjson" in head
    chunks = dechunk(body)
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
    assert response.status_code == 500 and "Can't connect" in response.text
    assert server.alive() and not (layout.blob / blob_name("qwen2:1.5b")).exists()


def test_a_library_host_that_does_not_resolve_is_unreachable(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(library={"host": "nonexistent.invalid", "port": 443})
    response = run().post("/api/pull", {"model": "qwen2:1.5b", "stream": False})
    assert response.status_code == 500 and "Can't connect" in response.text


def test_a_library_host_that_resolves_is_reachable(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(library={"host": "localhost", "port": 8443})
    assert run().post("/api/pull", {"model": "qwen2:1.5b", "stream": False}).json() == {"status": "success"}


# ---------------------------------------------------------------- device and generation
def test_without_a_device_chat_fails_with_status_74_and_the_model_shows_as_loaded(
        layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    response = server.post("/api/chat", CHAT)
    assert response.status_code == 500
    assert "Failed to create VDevice" in response.text and "HAILO_OUT_OF_PHYSICAL_DEVICES(74)" in response.text
    assert [m["name"] for m in server.get("/api/ps").json()["models"]] == ["qwen2:1.5b"]
    assert server.get("/api/version").status_code == 200


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
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["eval_count"] == len(lines) - 1
    assert isinstance(last["total_duration"], int) and last["total_duration"] >= last["eval_duration"] > 0
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


def test_openai_chat_completions_answers_once_and_refuses_streaming(layout: Layout, server: Standin) -> None:
    layout.put_blob("qwen2:1.5b")
    (layout.dev / "hailo0").touch()
    body = server.post("/v1/chat/completions", CHAT).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].endswith("stand-in.")
    response = server.post("/v1/chat/completions", {**CHAT, "stream": True})
    assert response.status_code == 400 and "streaming not supported" in response.json()["error"]


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
    assert "Stop signal received, please wait for server shutdown" in server.out


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


def test_build_debs_is_reproducible(debs: Path, tmp_path: Path) -> None:
    subprocess.run([str(HERE / "build-debs"), str(tmp_path)], check=True, capture_output=True)
    for deb in debs.iterdir():
        assert (tmp_path / deb.name).read_bytes() == deb.read_bytes(), deb.name


def test_build_debs_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", str(HERE / "build-debs")], check=True)
