"""A small HTTP/1.1 client for the local server's API, bounded in time and size.

The server is network-facing C++ that can be taken over, so its answers are
hostile. Every exchange has a TOTAL deadline (name lookup, connect, request,
headers and body together: each socket operation gets the time left, so a
byte-a-second answer cannot stretch it), a cap on the header block and one
on the body; NDJSON streams add an idle timeout and a cap per line. No
proxy, no TLS, one request per connection (``Connection: close``). Every
failure is an HttpError (an OSError) whose ``str()`` is one line naming the
URL; nothing the server sends goes into that message.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator, NamedTuple

from hailo_ollama_service import probe, untrusted

HEAD_CAP = 64 * 1024      # status line and headers
BODY_CAP = 1 << 20        # a whole (JSON) answer
LINE_CAP = 64 * 1024      # one NDJSON line of a stream
STREAM_CAP = 64 << 20     # all lines of a stream together
_HEX = b"0123456789abcdefABCDEF"


class HttpError(OSError):
    """An exchange that failed; ``str()`` is "URL: reason". ``kind`` is one of
    "connect", "deadline", "idle", "cap", "closed", "malformed"."""

    def __init__(self, where: str, reason: str, kind: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason, self.kind = where, reason, kind

    @property
    def timed_out(self) -> bool:
        """True when the total deadline or the idle timeout ended the exchange."""
        return self.kind in ("deadline", "idle")


class Reply(NamedTuple):
    """A whole answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def url(host: str, port: int, path: str = "") -> str:
    """``http://host:port`` plus ``path``, an IPv6 address in brackets (probe.url)."""
    return probe.url(host, port) + path


def resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo (TCP) bounded by ``timeout``; an IP literal is not looked up.

    Returns getaddrinfo's list. Raises OSError "cannot resolve HOST: why".
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, socket.SOCK_STREAM, 0, "", (host, port) + ((0, 0) if family == socket.AF_INET6 else ()))]
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            result["error"] = err
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if "infos" in result:
        return result["infos"]
    err = result.get("error")
    why = err.strerror if isinstance(err, socket.gaierror) else err or f"no answer within {timeout:g} s"
    raise OSError(f"cannot resolve {host}: {why}")


class Stream:
    """One exchange, open once the headers are read: ``status``, ``headers``, then the body
    (``pieces``, ``lines``, ``excerpt``). Made by ``stream()``; close it or use ``with``."""

    def __init__(self, host: str, port: int, method: str, path: str, doc: Any, deadline: float,
                 idle: float | None) -> None:
        self.where, self.total, self.idle = url(host, port, path), deadline, idle
        self.end = time.monotonic() + deadline
        self.buf = bytearray()
        self.sock = self._connect(host, port)
        try:
            body = b"" if doc is None else json.dumps(doc).encode()
            head = (f"{method} {path} HTTP/1.1\r\nHost: {url(host, port)[7:]}\r\nAccept: application/json\r\n"
                    "Connection: close\r\nUser-Agent: hailo-ollama-service\r\n"
                    + ("" if doc is None else f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"))
            self._io(self.sock.sendall, head.encode("latin-1", "replace") + b"\r\n" + body)
            self.status, self.headers = self._head()
            te = self.headers.get("transfer-encoding", "").lower()
            empty = method == "HEAD" or self.status in (204, 304)
            self.chunked = not empty and te.split(",")[-1].strip() == "chunked"
            length = {v.strip() for v in self.headers.get("content-length", "").split(",")}
            self.length: int | None = 0 if empty else None
            if not empty and not te and "content-length" in self.headers:
                if len(length) != 1 or not all(v.isascii() and v.isdigit() and len(v) < 19 for v in length):
                    raise self._error("malformed answer (bad Content-Length)", "malformed")
                self.length = int(length.pop())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the server sees the client go)."""
        self.sock.close()

    def _error(self, reason: str, kind: str) -> HttpError:
        return HttpError(self.where, reason, kind)

    def _left(self) -> float:
        """Seconds left before the deadline; raises HttpError when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self._error(f"no complete answer within {self.total:g} s", "deadline")
        return left

    def _connect(self, host: str, port: int) -> socket.socket:
        try:
            infos = resolve(host, port, self._left())
        except HttpError:
            raise
        except OSError as err:
            raise self._error(str(err), "connect") from None
        problem = "no address"
        for family, kind, proto, _name, address in infos:
            left = self._left()
            sock = None
            try:
                sock = socket.socket(family, kind, proto)
                sock.settimeout(left)
                sock.connect(address)
                return sock
            except OSError as err:
                if sock is not None:
                    sock.close()
                if isinstance(err, socket.timeout):
                    raise self._error(f"no complete answer within {self.total:g} s", "deadline") from None
                problem = err.strerror or str(err)
        raise self._error(f"cannot connect ({problem})", "connect")

    def _io(self, call: Any, *args: Any) -> Any:
        """``call(*args)`` on the socket with the time left (or the idle timeout when shorter)."""
        left = self._left()
        wait = min(left, self.idle) if self.idle else left
        try:
            self.sock.settimeout(wait)
            return call(*args)
        except socket.timeout:
            if self.idle and wait < left:
                raise self._error(f"no data for {self.idle:g} s", "idle") from None
            raise self._error(f"no complete answer within {self.total:g} s", "deadline") from None
        except OSError as err:
            raise self._error(f"connection broken ({err.strerror or err})", "closed") from None

    def _fill(self) -> bool:
        """Receive more into the buffer; False at the end of the connection."""
        data = self._io(self.sock.recv, 65536)
        self.buf += data
        return bool(data)

    def _head(self) -> tuple[int, dict[str, str]]:
        """Read the status line and headers (informational answers skipped), at most HEAD_CAP bytes."""
        used, start = 0, 0
        while True:
            end = self.buf.find(b"\r\n\r\n", max(0, start - 3))
            if end < 0 or used + end + 4 > HEAD_CAP:
                if used + len(self.buf) > HEAD_CAP:
                    raise self._error(f"header block over {HEAD_CAP} bytes", "cap")
                start = len(self.buf)
                if not self._fill():
                    raise self._error("connection closed before a complete answer", "closed")
                continue
            used += end + 4
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[:end + 4]
            start = 0
            parts = lines[0].split(" ", 2)
            code = parts[1] if len(parts) > 1 and parts[0].startswith("HTTP/1.") else ""
            if not (len(code) == 3 and code.isascii() and code.isdigit()):
                raise self._error("malformed answer (not an HTTP/1 status line)", "malformed")
            if not 100 <= int(code) < 200:
                headers: dict[str, str] = {}
                for name, sep, value in (line.partition(":") for line in lines[1:]):
                    key = name.strip().lower()
                    if sep:
                        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
                return int(code), headers

    def _line(self, limit: int) -> bytes:
        """One framing line (through its LF) of under ``limit`` bytes; raises HttpError otherwise."""
        start = 0
        while (at := self.buf.find(b"\n", start)) < 0 and len(self.buf) < limit:
            start = len(self.buf)
            if not self._fill():
                raise self._error("connection closed mid-answer", "closed")
        if not 0 <= at < limit:
            raise self._error("malformed answer (bad chunk framing)", "malformed")
        line = bytes(self.buf[:at + 1])
        del self.buf[:at + 1]
        return line

    def _some(self, most: int | None) -> bytes:
        """At least one byte (at most ``most``) of what has arrived, or b"" at the end of the connection."""
        if not self.buf and not self._fill():
            return b""
        piece = bytes(self.buf[:most] if most is not None else self.buf)
        del self.buf[:len(piece)]
        return piece

    def pieces(self, cap: int) -> Iterator[bytes]:
        """The body, decoded (Content-Length, chunked or close-delimited), in pieces as they arrive.

        A chunk's last piece comes only after the chunk's own CRLF, so a chunk
        cut short is never passed on. Raises HttpError for a body over ``cap``
        bytes (before reading on), a cut or malformed body, a timeout.
        """
        count, left = 0, self.length
        while self.chunked:
            text = self._line(1024).split(b";")[0].strip()
            if not text or len(text) > 15 or text.strip(_HEX):
                raise self._error("malformed answer (bad chunk size)", "malformed")
            size = int(text, 16)
            count += size
            if count > cap:
                raise self._error(f"answer over {cap} bytes", "cap")
            if size == 0:
                return
            held = b""
            while size:
                piece = self._some(size)
                if not piece:
                    raise self._error("connection closed mid-answer", "closed")
                size -= len(piece)
                if held:
                    yield held
                held = piece
            if self._line(3).strip():
                raise self._error("malformed answer (bad chunk end)", "malformed")
            yield held
        if left is not None and left > cap:
            raise self._error(f"answer over {cap} bytes", "cap")
        while left is None or left > 0:
            piece = self._some(left)
            if not piece and left is not None:
                raise self._error("connection closed mid-answer", "closed")
            count += len(piece)
            if count > cap:
                raise self._error(f"answer over {cap} bytes", "cap")
            if not piece:
                return
            left = None if left is None else left - len(piece)
            yield piece

    def lines(self, line_cap: int = LINE_CAP, cap: int = STREAM_CAP) -> Iterator[bytes]:
        """The body's non-blank lines (stripped), each yielded as soon as it is complete; closes
        at the end. Raises HttpError for a line over ``line_cap`` bytes, and as ``pieces``."""
        pending = bytearray()
        try:
            for piece in self.pieces(cap):
                pending += piece
                start = 0
                while (at := pending.find(b"\n", start)) >= 0 and at - start <= line_cap:
                    line, start = bytes(pending[start:at]).strip(), at + 1
                    if line:
                        yield line
                del pending[:start]
                if len(pending) > line_cap:
                    raise self._error(f"a line over {line_cap} bytes", "cap")
            if pending.strip():
                yield bytes(pending).strip()
        finally:
            self.close()

    def excerpt(self, limit: int = 4096, within: float = 10.0) -> str:
        """Escaped text of the start of the rest of the body (at most ``limit`` bytes, read
        for at most ``within`` s), for a message; what came before an error. Raises nothing."""
        self.end = min(self.end, time.monotonic() + within)
        data = bytearray()
        try:
            for piece in self.pieces(1 << 62):
                data += piece
                if len(data) >= limit:
                    break
        except HttpError:
            pass
        return untrusted.shown(bytes(data[:limit]).strip())


def stream(host: str, port: int, method: str, path: str, doc: Any = None, deadline: float = 10.0,
           idle: float | None = None) -> Stream:
    """Send a request and read the answer's headers; return the open Stream (use ``with``).

    Takes the server's host (IPv4, IPv6 literal or name) and port, method,
    path, an optional JSON document (sent as application/json), the total
    deadline in seconds (the body included) and an idle timeout (no byte for
    that long ends the exchange). Raises HttpError.
    """
    return Stream(host, port, method, path, doc, deadline, idle)


def request(host: str, port: int, method: str, path: str, doc: Any = None, deadline: float = 10.0,
            cap: int = BODY_CAP) -> Reply:
    """One whole exchange (arguments as ``stream``) with a body of at most ``cap`` bytes.

    Returns (status, headers, body). Raises HttpError (an OSError).
    """
    with Stream(host, port, method, path, doc, deadline, None) as answer:
        return Reply(answer.status, answer.headers, b"".join(answer.pieces(cap)))


def request_json(host: str, port: int, method: str, path: str, doc: Any = None, deadline: float = 10.0,
                 cap: int = BODY_CAP) -> tuple[int, Any]:
    """``request``, then the body parsed by ``untrusted.loads`` (size- and depth-bounded).

    Returns (status, value). Raises HttpError as ``request``; ValueError
    (one line naming the URL) when the body is not such JSON.
    """
    reply = request(host, port, method, path, doc, deadline, cap)
    try:
        return reply.status, untrusted.loads(reply.body, cap)
    except ValueError as err:
        raise ValueError(f"{url(host, port, path)}: the answer is {err}") from None
