"""Tests of api.py: the address to probe and the bounded wait."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from hailo_ollama_service import api


@pytest.mark.parametrize("listen,client", [("0.0.0.0", "127.0.0.1"), ("::", "::1"),
                                           ("127.0.0.1", "127.0.0.1"), ("pi5.local", "pi5.local")])
def test_wildcard_listen_addresses_are_probed_on_loopback(listen, client):
    assert api.client_host(listen) == client


def test_the_base_url_brackets_ipv6():
    assert api.base_url({"server.host": "::", "server.port": 11434}) == "http://[::1]:11434"
    assert api.base_url({"server.host": "0.0.0.0", "server.port": 1}) == "http://127.0.0.1:1"


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wait_ready_returns_the_version_when_the_api_answers(server):
    assert api.wait_ready("127.0.0.1", server, timeout=5) == "0.5.1"


def test_wait_ready_gives_up_when_nothing_listens():
    start = time.monotonic()
    assert api.wait_ready("127.0.0.1", free_port(), timeout=0.5) is None
    assert time.monotonic() - start < 5


def test_a_server_that_accepts_and_never_answers_cannot_stretch_the_wait(silent_port):
    start = time.monotonic()
    assert api.wait_ready("127.0.0.1", silent_port, timeout=1.0) is None
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
        assert api.wait_ready("127.0.0.1", port, timeout=10, interval=0.1) == "0.5.1"
    finally:
        if "s" in httpd_box:
            httpd_box["s"].shutdown()
            httpd_box["s"].server_close()


def test_a_wrong_answer_is_not_taken_for_ready(silent_port):
    assert api.version("127.0.0.1", silent_port, timeout=0.2) is None
