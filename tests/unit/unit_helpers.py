"""Small helpers shared by the unit tests."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, text: str | bytes) -> Path:
    """Create ``path`` (and its parents) with ``text``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` -> content (for "nothing written" checks)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class FakeApi:
    """A tiny Ollama-like HTTP server on loopback, for client-side tests.

    ``models`` are listed by /api/tags; ``pull_status``/``chat_status`` set
    the answers; every request is recorded in ``requests`` as (method, path, body).
    """

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.models: list[str] = []
        self.pull_status = 200
        self.chat_status = 200
        self.requests: list[tuple[str, str, dict]] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                api.requests.append(("GET", self.path, {}))
                if self.path == "/api/version":
                    self._send(200, {"version": "0.5.1"})
                elif self.path == "/api/tags":
                    self._send(200, {"models": [{"name": m, "model": m} for m in api.models]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api.requests.append(("POST", self.path, body))
                if self.path == "/api/pull":
                    if api.pull_status == 200:
                        api.models.append(body["model"])
                        self._send(200, {"status": "success"})
                    else:
                        self._send(api.pull_status, {"error": "Can't connect"})
                elif self.path == "/api/chat":
                    self._send(api.chat_status, {"message": {"role": "assistant", "content": "Hello"},
                                                 "done": True})
                else:
                    self._send(404, {"error": "not found"})

            def log_message(self, *_args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()


TICK = 0.03  # longer than the kernel's coarse timestamp tick, so a later write gets a later ctime


def apply_quietly(paths, try_restart: bool = False):
    """Root's apply (root/apply.py) with --keep-last-good, no report and no systemctl; its Result."""
    from hailo_ollama_service.root import apply
    return apply.apply(paths, True, try_restart, report=lambda _l: None, run=lambda _a: None)


def render_unchanged(paths, try_restart: bool = False) -> bool:
    """Would the render fast path (stamp.stamp_unchanged) answer for ``paths``?"""
    from hailo_ollama_service import stamp
    return stamp.stamp_unchanged(str(paths.root), try_restart)


SHOW_ACTIVE = ("ActiveState=active\nSubState=running\nNRestarts=0\nExecMainStatus=0\nExecMainCode=0\n"
               "UnitFileState=enabled\nLoadState=loaded")


def runner(answers: dict[str, tuple[int, str]]):
    """A fake command runner: answers keyed by the first two words."""
    def run(argv):
        return answers.get(" ".join(argv[:2]), (127, f"{argv[0]}: not found"))
    return run


def host_for(paths, answers: dict[str, tuple[int, str]] | None = None, root: bool = True):
    """A host.machine.Host for doctor's checks: upstream 5.1.1 installed, its unit active,
    ``answers`` added to (or replacing) those of the fake command runner."""
    from hailo_ollama_service.host.machine import Host
    base = {"dpkg-query -W": (0, "5.1.1"), "systemctl show": (0, SHOW_ACTIVE)}
    base.update(answers or {})
    return Host(paths, run=runner(base), is_root=root, api_timeout=0.5)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STANDIN = Path(__file__).resolve().parents[1] / "standin" / "hailo-ollama"
STANDIN_MANIFESTS = Path(__file__).resolve().parents[1] / "standin" / "manifests-5.1.1"


def Library(*args: str):  # noqa: N802 (constructs a LibraryProcess, as a class would)
    """The stand-in model library (tests/standin/library_process.py) for the
    stand-in's 5.1.1 blobs, started with ARGS (e.g. "--tamper", "--plain")."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("standin_library_process",
                                                  STANDIN.parent / "library_process.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LibraryProcess(*args, manifests=(STANDIN_MANIFESTS,))


class Standin:
    """The test stand-in ``hailo-ollama`` (tests/standin) on a loopback port.

    Lays out XDG config and data dirs under ``base`` like the service does,
    starts the server and waits for its "Server running" line.
    """

    def __init__(self, base: Path, device: bool = False, library: tuple[str, int] = ("dev-public.hailo.ai", 443),
                 mode: str = "5.1", env: dict[str, str] | None = None) -> None:
        import json
        import shutil

        self.port = free_port()
        self.base = base
        config = base / "config/hailo-ollama"
        config.mkdir(parents=True)
        (config / "hailo-ollama.json").write_text(json.dumps({
            "server": {"host": "127.0.0.1", "port": self.port},
            "library": {"host": library[0], "port": library[1]}, "main_poll_time_ms": 50}))
        self.data = base / "data/hailo-ollama/models"
        shutil.copytree(STANDIN_MANIFESTS, self.data / "manifests")
        self.control = base / "control"
        self.control.mkdir()
        self.dev = base / "dev"
        self.dev.mkdir()
        if device:
            (self.dev / "hailo0").write_bytes(b"")
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(base), "XDG_CONFIG_HOME": str(base / "config"),
                    "XDG_DATA_HOME": str(base / "data"), "HAILO_STANDIN_MODE": mode,
                    "HAILO_STANDIN_CONTROL_DIR": str(self.control), "HAILO_STANDIN_DEV_DIR": str(self.dev),
                    "HAILO_STANDIN_PULL_CHUNK_DELAY": "0.001", "HAILO_STANDIN_LOAD_DELAY": "0",
                    "HAILO_STANDIN_VDEVICE_DELAY": "0", "HAILO_STANDIN_TOKEN_DELAY": "0.001",
                    **({"OLLAMA_HOST": f"127.0.0.1:{self.port}"} if mode != "5.1" else {}), **(env or {})}
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port and files) and wait until it listens."""
        import subprocess
        import sys
        import time

        self.proc = subprocess.Popen([sys.executable, str(STANDIN)], env=self.env, cwd=self.base,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "Server running on port" in line:
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the stand-in did not start")

    def values(self) -> dict:
        """Effective settings pointing at this server."""
        from hailo_ollama_service.config.schema import DEFAULTS
        return dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": self.port})

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """Terminate the server (kill if it lingers)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def fake_haproxy(paths, status: int = 0) -> Path:
    """A stand-in ``haproxy`` at ``paths.haproxy`` for the render's ``haproxy -c``:
    exit ``status``; when it fails it prints an ALERT naming the file it was given."""
    return _executable(paths.haproxy, "#!/bin/sh\n"
                       f'[ {status} = 0 ] || echo "[ALERT]    (1) : config : parsing [$4:7] : nope" >&2\n'
                       f"exit {status}\n")


def real_haproxy(paths) -> Path:
    """``paths.haproxy`` as a link to the host's HAProxy (the test is skipped without it)."""
    import pytest

    if not Path(HAPROXY).is_file():
        pytest.skip(f"{HAPROXY} is not installed (package haproxy)")
    paths.haproxy.parent.mkdir(parents=True, exist_ok=True)
    paths.haproxy.symlink_to(HAPROXY)
    return paths.haproxy


def _executable(path: Path, text: str) -> Path:
    write(path, text)
    path.chmod(0o755)
    return path


HAPROXY = "/usr/sbin/haproxy"


class RuntimeApi:
    """A stand-in for the access front's runtime API (HAProxy's admin socket) under the scratch root:
    records each command and answers ``answer``."""

    def __init__(self, paths, answer: bytes = b"") -> None:
        import socket
        import threading

        import pytest

        from hailo_ollama_service.config.access import RUNTIME_SOCKET
        where = paths.root / RUNTIME_SOCKET.lstrip("/")
        if len(str(where)) > 100:
            pytest.skip("the scratch root is too deep for a unix socket path")
        where.parent.mkdir(parents=True, exist_ok=True)
        self.commands: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(where))
        self.sock.listen(8)
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.commands.append(conn.recv(4096).decode().strip())
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()
