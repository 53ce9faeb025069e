"""Tests of the stand-in's hostile modes (a compromised server) and of its impostor start.

The knob `hostile` (file <control>/hostile or env HAILO_STANDIN_HOSTILE) is read for each request, so one
stand-in serves every test of this module and each test switches it by writing the file.  Every client here is
a raw socket with its own deadline: the answers of a hostile server are not meant to end.
See README.md beside this file, "Hostile modes".
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from standin_helpers import STANDIN, Layout, Standin, free_port

MIB = 1 << 20
VERSION_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nServer: oatpp/1.4.0\r\n\r\n{\"version\":\"0.5.1\"}")
ROOT_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Length: 23\r\nConnection: close\r\nServer: oatpp/1.4.0\r\n\r\n"
               b"hailo-ollama is running")
STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
# what escapes must smuggle into a string: CSI colour, OSC window title, bare CR, a C1 control, RLO (bidi)
CONTROLS = ("\x1b[31m", "\x1b]0;pwned\x07", "\r", "\x9b", "\u202e")
JSON_GETS = ("/api/version", "/api/tags", "/hailo/v1/list", "/api/ps")


class Server:
    """The module's stand-in (5.1, the five models, qwen2:1.5b pulled) and its control dir."""

    def __init__(self, standin: Any, control: Path) -> None:
        self.standin, self.control = standin, control
        self.port, self.pid = standin.port, standin.proc.pid
        self.baseline = threads(self.pid)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    layout = Layout(tmp_path_factory.mktemp("hostile")).standard()
    layout.put_blob("qwen2:1.5b")
    standin = Standin(layout, {}, ()).wait_running()
    try:
        yield Server(standin, layout.control)
    finally:
        standin.kill()


@pytest.fixture
def knob(server: Server) -> Iterator[Callable[[str, str], None]]:
    """Write a control file of the running stand-in (removed after the test)."""
    written: list[Path] = []

    def write(name: str, value: str) -> None:
        path = server.control / name
        path.write_text(value + "\n")
        written.append(path)

    yield write
    for path in written:
        path.unlink(missing_ok=True)
    wait_threads(server, 5)  # let the hostile answers of this test notice that their clients went


# ---------------------------------------------------------------- raw client
def request(port: int, method: str, path: str, body: dict[str, Any] | None = None,
            ctype: str = "application/json") -> socket.socket:
    """Send one request (Connection: close); the socket to read the answer from."""
    data = json.dumps(body).encode() if body is not None else b""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def read_for(sock: socket.socket, seconds: float, limit: int | None = None) -> bytes:
    """What arrives within ``seconds``, stopping early at ``limit`` bytes or at the end of the stream."""
    deadline = time.monotonic() + seconds
    received = bytearray()
    while limit is None or len(received) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(4 * MIB if limit is None else min(4 * MIB, limit - len(received)))
        except socket.timeout:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def fetch(port: int, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> bytes:
    """A whole answer, which must end (the server closes) within 5 s."""
    with request(port, method, path, body, **kwargs) as sock:
        received = read_for(sock, 5)
        sock.settimeout(0.01)
        try:
            assert sock.recv(1) == b"", f"{path}: still sending after 5 s"
        except socket.timeout:
            raise AssertionError(f"{path}: no end within 5 s") from None
    return received


def body_of(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(STATUS_LINE), head
    return body


def read_many(socks: list[socket.socket], seconds: float) -> list[bytes]:
    """Read several connections at once for ``seconds``."""
    received = {sock: bytearray() for sock in socks}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                chunk = key.fileobj.recv(65536)
                received[key.fileobj] += chunk
                if not chunk:
                    selector.unregister(key.fileobj)
    return [bytes(received[sock]) for sock in socks]


def dechunk_prefix(raw: bytes) -> bytes:
    """The data of a chunked body that has not ended: every chunk that came whole, and the start of the last."""
    data = bytearray()
    while raw:
        size_line, found, rest = raw.partition(b"\r\n")
        if not found:
            break
        size = int(size_line, 16)
        assert size > 0, "the body ended"
        data += rest[:size]
        if len(rest) < size + 2:
            break
        assert rest[size:size + 2] == b"\r\n"
        raw = rest[size + 2:]
    return bytes(data)


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def wait_threads(server: Server, timeout: float) -> bool:
    """Wait for the stand-in to be back to its idle threads (no connection being served)."""
    deadline = time.monotonic() + timeout
    while threads(server.pid) > server.baseline:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def depth(text: bytes) -> int:
    """The deepest nesting of JSON arrays and objects (without recursion)."""
    level = deepest = 0
    for byte in text:
        if byte in b"[{":
            level += 1
            deepest = max(deepest, level)
        elif byte in b"]}":
            level -= 1
    return deepest


def assert_controls(text: str) -> None:
    for control in CONTROLS:
        assert control in text, (control, text)


# ---------------------------------------------------------------- normal
def test_without_the_knob_with_an_empty_one_and_once_it_is_removed_the_answers_are_the_normal_bytes(
        server: Server, knob: Callable[[str, str], None]) -> None:
    paths = ("/", *JSON_GETS)
    normal = {path: fetch(server.port, "GET", path) for path in paths}
    assert normal["/api/version"] == VERSION_ANSWER
    assert normal["/"] == ROOT_ANSWER
    assert json.loads(body_of(normal["/api/tags"]))["models"][0]["name"] == "qwen2:1.5b"
    knob("hostile", "")
    assert {path: fetch(server.port, "GET", path) for path in paths} == normal
    knob("hostile", "deep")
    assert fetch(server.port, "GET", "/api/version") != VERSION_ANSWER
    (server.control / "hostile").unlink()
    assert {path: fetch(server.port, "GET", path) for path in paths} == normal


def test_the_knob_is_read_for_each_request_also_on_a_connection_kept_alive(
        server: Server, knob: Callable[[str, str], None]) -> None:
    def version(sock: socket.socket) -> str:
        sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        return json.loads(body_of(received))["version"]

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert version(sock) == "0.5.1"
        knob("hostile", "escapes")
        assert version(sock).startswith("0.5.1\x1b[31m")
        (server.control / "hostile").unlink()
        assert version(sock) == "0.5.1"


def test_an_unknown_hostile_value_answers_normally_and_logs_a_warning(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "nonsense")
    assert fetch(server.port, "GET", "/api/version") == VERSION_ANSWER
    deadline = time.monotonic() + 5
    while "unknown hostile mode 'nonsense' ignored" not in server.standin.out:
        assert time.monotonic() < deadline, server.standin.out
        time.sleep(0.02)


# ---------------------------------------------------------------- slow
def test_slow_sends_every_answer_one_byte_a_second_to_clients_served_side_by_side(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "slow")
    socks = [request(server.port, "GET", path) for path in ("/", *JSON_GETS)]
    socks.append(request(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"}))
    try:
        received = read_many(socks, 3.0)
    finally:
        for sock in socks:
            sock.close()
    for data in received:  # a byte at 0, 1, 2 (and maybe 3) s, on each connection at once
        assert 2 <= len(data) < 10, received
        assert STATUS_LINE.startswith(data), received
    assert wait_threads(server, 5), "slow answers go on after their clients closed"


def test_slow_takes_its_delay_from_the_slow_delay_knob_and_dribbles_the_normal_answer(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "slow")
    knob("slow-delay", "0.01")
    began = time.monotonic()
    answer = fetch(server.port, "GET", "/api/version")
    assert answer == VERSION_ANSWER
    assert time.monotonic() - began >= len(VERSION_ANSWER) * 0.01


# ---------------------------------------------------------------- endless
@pytest.mark.parametrize("mode", ["endless", "endless-line"])
@pytest.mark.parametrize("path", ["/", *JSON_GETS])
def test_endless_answers_200_at_once_then_a_body_without_length_past_16_mib(
        server: Server, knob: Callable[[str, str], None], mode: str, path: str) -> None:
    knob("hostile", mode)
    with request(server.port, "GET", path) as sock:
        first = read_for(sock, 1, limit=len(STATUS_LINE))
        assert first == STATUS_LINE
        head, _, body = (first + read_for(sock, 10, limit=16 * MIB)).partition(b"\r\n\r\n")
        assert b"content-length" not in head.lower() and b"chunked" not in head.lower()
        assert len(body) >= 16 * MIB - len(head) - 4
        assert body.startswith(b"hailo-ollama is running" if path == "/" else b'{"')
        assert read_for(sock, 1, limit=1) != b"", "the body ended"


@pytest.mark.parametrize("path,body", [("/api/pull", {"model": "qwen2:1.5b"}),
                                       ("/api/chat", {"model": "qwen2:1.5b", "messages": []}),
                                       ("/api/generate", {"model": "qwen2:1.5b", "prompt": "hi"})])
def test_endless_streams_valid_ndjson_lines_in_chunks_that_never_end(
        server: Server, knob: Callable[[str, str], None], path: str, body: dict[str, Any]) -> None:
    knob("hostile", "endless")
    with request(server.port, "POST", path, body) as sock:
        head, _, raw = read_for(sock, 10, limit=8 * MIB).partition(b"\r\n\r\n")
    assert head.startswith(STATUS_LINE) and b"Transfer-Encoding: chunked" in head
    lines = dechunk_prefix(raw).split(b"\r\n")[:-1]
    assert sum(map(len, lines)) > 7 * MIB
    objects = [json.loads(line) for line in lines]
    assert all(obj.get("status") == "pulling" if path == "/api/pull" else obj["done"] is False
               for obj in objects)
    if path == "/api/pull":
        completed = [obj["completed"] for obj in objects]
        assert completed == sorted(set(completed))


def test_endless_line_pulls_one_line_that_never_ends(server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "endless-line")
    with request(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"}) as sock:
        head, _, raw = read_for(sock, 10, limit=8 * MIB).partition(b"\r\n\r\n")
    assert head.startswith(STATUS_LINE) and b"Transfer-Encoding: chunked" in head
    data = dechunk_prefix(raw)
    assert len(data) > 7 * MIB
    assert data.startswith(b'{"status":"') and b"\n" not in data


def test_huge_headers_sends_a_header_block_that_never_ends(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "huge-headers")
    with request(server.port, "GET", "/api/version") as sock:
        data = read_for(sock, 10, limit=4 * MIB)
    assert data.startswith(STATUS_LINE) and len(data) >= 4 * MIB
    assert b"\r\n\r\n" not in data and data.count(b"\r\n") > 50_000


def test_an_endless_answer_serves_other_clients_meanwhile_and_stops_when_its_client_goes(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "endless")
    assert wait_threads(server, 5)
    first = request(server.port, "GET", "/api/tags")
    second = request(server.port, "POST", "/api/pull", {"model": "qwen2:1.5b"})
    try:
        assert len(read_for(first, 5, limit=MIB)) >= MIB
        assert read_for(second, 2, limit=len(STATUS_LINE)) == STATUS_LINE
        assert len(read_for(first, 5, limit=MIB)) >= MIB
        assert threads(server.pid) == server.baseline + 2
    finally:
        first.close()
        second.close()
    assert wait_threads(server, 3), "an endless answer goes on after its client closed"
    before = cpu_seconds(server.pid)
    time.sleep(0.5)
    assert cpu_seconds(server.pid) - before < 0.1


def test_the_server_stops_at_once_on_sigterm_with_an_endless_answer_in_progress(tmp_path: Path) -> None:
    layout = Layout(tmp_path).standard()
    standin = Standin(layout, {"HAILO_STANDIN_HOSTILE": "endless"}, ()).wait_running()
    try:
        with request(standin.port, "GET", "/api/version") as sock:
            assert len(read_for(sock, 5, limit=MIB)) >= MIB
            standin.proc.send_signal(signal.SIGTERM)
            assert standin.wait_exit(3) == 0, standin.out + standin.err
        assert "Traceback" not in standin.err
    finally:
        standin.kill()


# ---------------------------------------------------------------- escapes
def test_escapes_puts_terminal_controls_in_the_version_the_model_names_and_pull_and_show_errors(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "escapes")
    version = json.loads(body_of(fetch(server.port, "GET", "/api/version")))["version"]
    assert "\x1b" in version
    assert_controls(version)
    listed = json.loads(body_of(fetch(server.port, "GET", "/hailo/v1/list")))["models"]
    assert_controls(listed[0])
    assert "qwen2:1.5b" in listed
    for path in ("/api/tags", "/api/ps"):
        models = json.loads(body_of(fetch(server.port, "GET", path)))["models"]
        assert_controls(models[0]["name"])
        assert_controls(models[0]["model"])
    assert json.loads(body_of(fetch(server.port, "GET", "/api/tags")))["models"][1]["name"] == "qwen2:1.5b"
    for path in ("/api/pull", "/api/show"):
        error = json.loads(body_of(fetch(server.port, "POST", path, {"model": "nope:1b"})))["error"]
        assert error.startswith("model 'nope:1b' not found")
        assert_controls(error)
        page = fetch(server.port, "POST", path, {"model": "qwen2:1.5b"}, ctype="text/plain")
        assert b"\x1b[31m" in page and b"\x1b]0;pwned\x07" in page and "\u202e".encode() in page
    assert fetch(server.port, "GET", "/") == ROOT_ANSWER


# ---------------------------------------------------------------- deep
def test_deep_nests_version_tags_list_and_ps_beyond_10000_levels_so_that_json_loads_fails(
        server: Server, knob: Callable[[str, str], None]) -> None:
    knob("hostile", "deep")
    for path in JSON_GETS:
        body = body_of(fetch(server.port, "GET", path))
        assert body.startswith(b'{"version":[' if path == "/api/version" else b'{"models":[')
        assert depth(body) > 10_000
        with pytest.raises(RecursionError):
            json.loads(body)
    assert fetch(server.port, "GET", "/") == ROOT_ANSWER
    assert json.loads(body_of(fetch(server.port, "POST", "/api/show", {"model": "qwen2:1.5b"})))["modelfile"] == ""


# ---------------------------------------------------------------- impostor
def impostor_argv(program: Path, home: Path, port: int) -> list[str]:
    """The command line README.md documents (with the program's path and the port)."""
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            "env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", f"XDG_CONFIG_HOME={home}/.config",
            f"XDG_DATA_HOME={home}/.local/share", "HAILO_STANDIN_IMPOSTOR=1", f"OLLAMA_HOST=127.0.0.1:{port}",
            str(program)]


def listener_uid(port: int) -> int | None:
    """The uid owning the TCP socket that listens on 127.0.0.1:port (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            return int(fields[7])
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="running the stand-in as another user needs root")
def test_the_impostor_command_line_runs_a_process_named_hailo_ollama_as_nobody_that_answers_normally() -> None:
    base = Path(tempfile.mkdtemp(prefix="standin-impostor-"))  # not under pytest's 0700 tmp dirs
    proc: subprocess.Popen[bytes] | None = None
    try:
        base.chmod(0o755)
        program = base / "hailo-ollama"
        shutil.copy(STANDIN, program)
        program.chmod(0o755)
        (base / "control").mkdir()
        home = base / "x"  # need not exist: nothing is read or created there
        port = free_port()
        argv = impostor_argv(program, home, port)
        argv.insert(argv.index("HAILO_STANDIN_IMPOSTOR=1"), f"HAILO_STANDIN_CONTROL_DIR={base / 'control'}")
        proc = subprocess.Popen(argv, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while listener_uid(port) is None:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        assert listener_uid(port) == 65534
        assert Path(f"/proc/{proc.pid}/comm").read_text() == "hailo-ollama\n"
        uids = next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    if line.startswith("Uid:"))
        assert uids.split()[1:] == ["65534"] * 4
        assert fetch(port, "GET", "/api/version") == VERSION_ANSWER
        assert fetch(port, "GET", "/") == ROOT_ANSWER
        assert json.loads(body_of(fetch(port, "GET", "/api/tags"))) == {"models": []}
        assert not home.exists()
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(base)
