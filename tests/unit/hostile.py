"""A hostile HTTP server on loopback for client-side tests.

Each answer is a script: raw bytes sent as they are, or a function that
writes to the connection as it likes (a byte at a time, forever, never).
It runs in threads of the test process; ``close()`` stops every script.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Callable, Iterable, Union

Script = Callable[["Connection"], None]
Answer = Union[bytes, Script]


class Connection:
    """One accepted connection as a script sees it: ``send`` raises ConnectionError once the
    client has gone or the server is closing; ``gone()`` tells whether the client closed."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock, self.stop = sock, stop
        self.sent = 0

    def send(self, data: bytes) -> None:
        """Send ``data`` (all of it); raises ConnectionError when the client went or on close()."""
        if self.stop.is_set():
            raise ConnectionError("server closing")
        self.sock.sendall(data)
        self.sent += len(data)

    def gone(self, wait: float) -> bool:
        """True when the client closes its end within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True


class Hostile:
    """Serve ``routes`` ("METHOD /path" or "/path" -> Answer) on 127.0.0.1 (``port``).

    Unknown routes answer 404. Every request is recorded in ``requests`` as
    (method, path, headers with lower-case names, body bytes).
    """

    def __init__(self, routes: dict[str, Answer]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._start(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            while len(body) < int(headers.get("content-length", 0)):
                body += sock.recv(65536)
            self.requests.append((method, path, headers, body))
            answer = self.routes.get(f"{method} {path}", self.routes.get(path, reply(404, {"error": "not found"})))
            if isinstance(answer, bytes):
                sock.sendall(answer)
            else:
                answer(Connection(sock, self.stop))
        except OSError:  # the client went, or close() stopped the script
            pass
        finally:
            sock.close()

    def close(self) -> None:
        """Stop every script and the listener."""
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


def reply(status: int, body: Any, ctype: str = "application/json", close: bool = True) -> bytes:
    """A whole answer with a Content-Length; ``body`` is bytes, or a document sent as JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
            f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n").encode() + data


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


NDJSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"


def drip(data: bytes, pause: float) -> Script:
    """Send ``data`` one byte every ``pause`` seconds."""
    def script(conn: Connection) -> None:
        for index in range(len(data)):
            conn.send(data[index:index + 1])
            time.sleep(pause)
    return script


def endless(head: bytes, block: bytes) -> Script:
    """Send ``head``, then ``block`` again and again, as fast as the client reads."""
    def script(conn: Connection) -> None:
        conn.send(head)
        while True:
            conn.send(block)
    return script


def ndjson(events: Iterable[Any], pause: float = 0.0, end: bool = True, then: Script | None = None) -> Script:
    """A chunked NDJSON stream: each event (a document, or raw bytes) in its own chunk, ``pause``
    seconds apart; the last chunk when ``end``; then ``then`` (e.g. silence)."""
    def script(conn: Connection) -> None:
        conn.send(NDJSON_HEAD)
        for event in events:
            conn.send(chunk(event if isinstance(event, bytes) else json.dumps(event).encode() + b"\r\n"))
            time.sleep(pause)
        if end:
            conn.send(b"0\r\n\r\n")
        if then is not None:
            then(conn)
    return script


def silence(conn: Connection) -> None:
    """Send nothing more until the client goes or the server closes."""
    while not conn.stop.is_set() and not conn.gone(0.05):
        pass
