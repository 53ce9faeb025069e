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
