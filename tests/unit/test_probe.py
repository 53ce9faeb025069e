"""Tests of probe.py: the lean /api/version probe, /proc listeners and the bounded wait."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from hailo_ollama_service import probe

from unit_helpers import free_port


@pytest.mark.parametrize("listen,client", [("0.0.0.0", "127.0.0.1"), ("::", "::1"),
                                           ("127.0.0.1", "127.0.0.1"), ("pi5.local", "pi5.local")])
def test_wildcard_listen_addresses_are_probed_on_loopback(listen, client):
    assert probe.client_host(listen) == client


class _Version(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"version": "0.5.1"}).encode()
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def silent_port():
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def test_wait_ready_returns_the_version_when_the_api_answers(server):
    assert probe.wait_ready("127.0.0.1", server, timeout=5) == "0.5.1"


def test_wait_ready_gives_up_when_nothing_listens():
    start = time.monotonic()
    assert probe.wait_ready("127.0.0.1", free_port(), timeout=0.5) is None
    assert time.monotonic() - start < 5


def test_a_server_that_accepts_and_never_answers_cannot_stretch_the_wait(silent_port):
    start = time.monotonic()
    assert probe.wait_ready("127.0.0.1", silent_port, timeout=1.0) is None
    assert time.monotonic() - start < 5  # bounded by the timeout, not by 2 s per probe forever


def test_wait_ready_polls_until_the_server_comes_up():
    port = free_port()
    httpd_box = {}

    def start_later():
        time.sleep(0.5)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Version)
        httpd_box["s"] = httpd
        httpd.serve_forever()

    threading.Thread(target=start_later, daemon=True).start()
    try:
        assert probe.wait_ready("127.0.0.1", port, timeout=10, interval=0.1) == "0.5.1"
    finally:
        if "s" in httpd_box:
            httpd_box["s"].shutdown()
            httpd_box["s"].server_close()


def test_a_wrong_answer_is_not_taken_for_ready(silent_port):
    assert probe.version("127.0.0.1", silent_port, timeout=0.2) is None


class _Error(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b'{"version":"0.5.1"}'
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_an_error_status_is_not_taken_for_ready_even_with_a_version_body():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Error)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert probe.version("127.0.0.1", httpd.server_address[1], timeout=2) is None
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("body, found", [(b'{"version":"0.5.1"}', "0.5.1"), (b'{ "version" : "1.2" }', "1.2"),
                                         (b'{"version":5}', None), (b"hailo-ollama is running", None),
                                         (b'{"version":"a\\"b"}', 'a"b'),
                                         (b'{"version":"0.5.1\\u001B[2J"}', "0.5.1\x1b[2J"),
                                         (b'{"version":"a\\x"}', None),
                                         (b'{"version":"0.5.1', None), (b'{"version":"%s"}' % (b"9" * 64), "9" * 64),
                                         (b'{"version":"%s"}' % (b"9" * 65), None)])
def test_the_version_is_read_from_the_answer_or_nothing_is(body, found):
    assert probe.version_of(body) == found


@pytest.mark.parametrize("hex_addr, text", [("0100007F", "127.0.0.1"), ("00000000", "0.0.0.0"),
                                            ("00000000000000000000000001000000", "::1"),
                                            ("0000000000000000FFFF00000100007F", "127.0.0.1")])
def test_proc_net_addresses_are_decoded_like_the_kernel_writes_them(hex_addr, text):
    assert probe.decode_address(hex_addr) == text


def test_the_listeners_of_a_process_are_found_with_their_addresses():
    with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
        v4.bind(("127.0.0.1", 0))
        v4.listen(1)
        v6.bind(("::1", 0))
        v6.listen(1)
        found = probe.pid_listeners(os.getpid())
        assert ("127.0.0.1", v4.getsockname()[1]) in found
        assert ("::1", v6.getsockname()[1]) in found


def test_a_gone_process_has_no_listeners_and_is_not_alive():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert probe.pid_listeners(gone.pid) == []
    assert not probe.pid_alive(gone.pid)
    assert probe.pid_alive(os.getpid())


def test_report_wait_says_why_it_failed_in_one_line(capsys):
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert probe.report_wait("127.0.0.1", free_port(), 0.3, gone.pid, False) == 1
    said = capsys.readouterr().err
    assert said == f"hailo-ollama-service: the server (pid {gone.pid}) exited before its API answered\n"
    port = free_port()
    assert probe.report_wait("127.0.0.1", port, 0.2, None, False) == 1
    assert capsys.readouterr().err == (f"hailo-ollama-service: no answer from http://127.0.0.1:{port}/api/version "
                                       "within 0.2 s\n")


def test_report_wait_prints_the_url_unless_quiet(server, capsys):
    assert probe.report_wait("127.0.0.1", server, 5, None, False) == 0
    assert capsys.readouterr().out == f"http://127.0.0.1:{server} answers (version 0.5.1)\n"
    assert probe.report_wait("127.0.0.1", server, 5, None, True) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("body", [b'{"version":"0.5.1\x1b]0;owned\x07\x1b[2J"}',
                                  b'{"version":"0.5.1\\u001B]0;owned\\u0007\\u001b[2J"}'], ids=["raw", "json-escaped"])
def test_report_wait_escapes_a_version_with_control_characters(capsys, body):
    from hostile import Hostile, reply
    server = Hostile({"/api/version": reply(200, body)})
    try:
        assert probe.report_wait("127.0.0.1", server.port, 5, None, False) == 0
    finally:
        server.close()
    assert capsys.readouterr().out == (f"http://127.0.0.1:{server.port} answers "
                                       "(version 0.5.1\\x1b]0;owned\\x07\\x1b[2J)\n")


def test_mainpid_is_taken_from_the_environment_only_when_it_is_a_pid():
    assert probe.mainpid({"MAINPID": "42"}) == 42
    assert probe.mainpid({"MAINPID": "0"}) is None and probe.mainpid({"MAINPID": "x"}) is None
    assert probe.mainpid({}) is None
