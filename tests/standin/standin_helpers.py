"""Helpers shared by the stand-in's tests (imported as `standin_helpers`; conftest.py puts this dir on sys.path).

Paths and model lists of the shipped data, the stand-in imported as a module (STANDIN_MODULE), Layout (a
temporary XDG tree, control dir and /dev for one stand-in), Standin (one stand-in process and its output),
raw HTTP and NDJSON readers, the 5.3/5.4 start helpers and the stand-in library launcher
(library_process.py, shared with the unit tests).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

import library_process

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

    def config(self, base: Path | None = None, text: str | None = None, **changes: Any) -> Path:
        """Write <base>/hailo-ollama/hailo-ollama.json (a 5.1 config on our port unless text is given)."""
        data: dict[str, Any] = {"server": {"host": "127.0.0.1", "port": self.port},
                                "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
        data.update(changes)
        path = (base or self.etc_xdg) / "hailo-ollama" / "hailo-ollama.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data) if text is None else text)
        return path

    def manifests(self, base: Path | None = None, names: list[str] | None = None,
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

    def put_blob(self, name: str, blob_dir: Path | None = None) -> Path:
        """Place the valid blob of a model as if it had been pulled."""
        spec = manifest(name)["standin"]
        target = (blob_dir or self.blob) / blob_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(STANDIN_MODULE.blob_bytes(spec["blob_seed"], spec["blob_size"]))
        return target

    def standard(self) -> Layout:
        """Config in XDG_CONFIG_DIRS, the five manifests in XDG_DATA_DIRS (like the real package)."""
        self.config()
        self.manifests()
        return self


class Standin:
    """One stand-in process with its output collected in the background."""

    def __init__(self, layout: Layout, env: dict[str, str], args: tuple[str, ...],
                 uid: int | None = None) -> None:
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

    def wait_running(self, timeout: float = 10) -> Standin:
        """Wait for the `Server running on port` line."""
        deadline = time.monotonic() + timeout
        while "Server running on port" not in self.out:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.wait_exit(1)
                raise AssertionError(f"stand-in did not start (rc={self.proc.returncode})\n{self.out}\n{self.err}")
            time.sleep(0.01)
        return self

    def wait_exit(self, timeout: float = 10) -> int | None:
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


def raw_http(port: int, method: str, path: str, body: dict[str, Any] | None = None,
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


# ---------------------------------------------------------------- 5.3 and 5.4
def run_53(layout: Layout, run: Callable[..., Standin], **env: Any) -> Standin:
    return run({"HAILO_STANDIN_MODE": "5.3", "OLLAMA_HOST": f"127.0.0.1:{layout.port}", **env})


def run_54(layout: Layout, run: Callable[..., Standin], **env: Any) -> Standin:
    return run({"HAILO_STANDIN_MODE": "5.4", "OLLAMA_HOST": f"127.0.0.1:{layout.port}", **env})


def blob_dir_54(layout: Layout) -> Path:
    return layout.data_home / "hailo-ollama" / "models" / "blob"


def hef_54(name: str) -> tuple[str, bytes]:
    """The hef_filename of a shipped 5.4 model and the bytes the stand-in library serves for it."""
    data = manifest(name, MANIFESTS_54)
    return data["hef_filename"], STANDIN_MODULE.blob_bytes(data["standin"]["blob_seed"], data["standin"]["blob_size"])


# ---------------------------------------------------------------- the stand-in library
Library = library_process.LibraryProcess  # library_process.py, the launcher the unit tests share
