"""``hailo-ollama-service pull MODEL``: a model download with progress.

Upstream 5.1 dies when a *streaming* pull cannot reach the model library,
so the library is probed from here first and an unreachable one is
reported without asking the server. The model name is checked against the
server's list, so a typo gets the list of names instead of a cryptic error.
A model whose blob is already present (listed by /api/tags) needs no library:
upstream checks the blob's sha256 and skips the download, so that pull works
offline and is not refused; it is asked without streaming.

The real 5.1.1 server ends every streaming pull without the last chunk's end
and drops the connection, so its last line ("success") never reaches an HTTP
client. When the stream breaks after progress and the blob is then present,
the verdict comes from a non-streaming pull: upstream checks the blob's sha256
again and answers success or an error with a proper length.
"""

from __future__ import annotations

import json
import socket
import time
from typing import IO, Any, Callable

from hailo_ollama_service import api
from hailo_ollama_service.schema import Value


class PullError(Exception):
    """A pull that cannot be done; ``str()`` is one line with what to try."""


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Renders pull progress: a redrawn bar on a terminal, plain lines otherwise.

    Takes the output stream, whether it is a terminal and a clock.
    """

    def __init__(self, out: IO[str], tty: bool, clock: Callable[[], float] = time.monotonic):
        self.out, self.tty, self.clock = out, tty, clock
        self.start = clock()
        self.last_step = -1
        self.last_status = ""

    def line(self, done: int, total: int, digest: str) -> str:
        """Return the progress text for ``done`` of ``total`` bytes."""
        elapsed = max(self.clock() - self.start, 1e-6)
        rate = done / elapsed
        percent = 100 * done / total if total else 0
        eta = (total - done) / rate if rate > 0 and total else 0
        return (f"pulling {digest[:19]}: {percent:5.1f}% {_size(done)}/{_size(total)} "
                f"{_size(rate)}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def update(self, event: dict[str, Any]) -> None:
        """Show one NDJSON event of /api/pull."""
        status = str(event.get("status", ""))
        total, done = event.get("total"), event.get("completed")
        if status == "pulling" and isinstance(total, int) and isinstance(done, int):
            text = self.line(done, total, str(event.get("digest", "")))
            if self.tty:
                width = 30
                filled = int(width * done / total) if total else 0
                self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
                self.out.flush()
                return
            step = int(10 * done / total) if total else 0
            if step != self.last_step:  # a line per 10 %, for logs
                self.last_step = step
                self.out.write(text + "\n")
                self.out.flush()
            return
        if status and status != self.last_status:
            self.last_status = status
            self.out.write(("\r\x1b[K" if self.tty else "") + status + "\n")
            self.out.flush()


def library_reachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Try a TCP connection to the model library; return None or the problem."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as err:
        return f"cannot resolve {host}: {err.strerror}"
    except OSError as err:
        return f"cannot connect to {host}:{port}: {err.strerror or err}"


def _present(session: Any, url: str, timeout: float) -> set[str]:
    """Names of the models whose blob the server has (``/api/tags``); an
    empty set when it cannot tell. Raises nothing."""
    import requests

    try:
        models = session.get(f"{url}/api/tags", timeout=timeout).json().get("models", [])
        return {str(m.get("name")) for m in models if isinstance(m, dict)}
    except (requests.RequestException, ValueError, AttributeError):
        return set()


def _verify_present(session: Any, url: str, model: str, progress: Progress) -> None:
    """Have the server check the present blob of ``model`` (a non-streaming
    pull: upstream hashes it and downloads nothing). Raises PullError when
    the server does not answer success."""
    import requests

    progress.update({"status": "verifying sha256 digest"})
    try:
        reply = session.post(f"{url}/api/pull", json={"model": model, "stream": False}, timeout=(5, 600))
        answer = reply.json() if reply.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        answer = None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        detail = answer.get("error") if isinstance(answer, dict) and answer.get("error") else "no success"
        raise PullError(f"the server could not verify the present blob of {model} ({detail}); "
                        "journalctl -u hailo-ollama.service -n 50")
    progress.update(answer)


def pull(values: dict[str, Value], model: str, progress: Progress,
         reachable: Callable[[str, int], str | None] = library_reachable,
         connect_timeout: float = 5.0) -> None:
    """Pull ``model`` through the configured server, reporting progress.

    Raises PullError for an API that is down, an unknown model, an
    unreachable library or a failed download; KeyboardInterrupt closes the
    connection (the server finishes or drops the download on its own).
    """
    import requests

    session = api.local_session()
    url = api.base_url(values)
    try:
        listed = session.get(f"{url}/hailo/v1/list", timeout=connect_timeout).json().get("models", [])
    except requests.RequestException:
        raise PullError(f"the API at {url} does not answer; check: systemctl status hailo-ollama.service") from None
    except (ValueError, AttributeError):
        listed = []
    if listed and model not in listed:
        raise PullError(f"unknown model {model!r}; available: {', '.join(sorted(listed))}")
    if model in _present(session, url, connect_timeout):
        _verify_present(session, url, model, progress)
        return
    problem = reachable(str(values["library.host"]), int(values["library.port"]))
    if problem:
        raise PullError(f"the model library is unreachable ({problem}); check the network or "
                        "library.host in /etc/hailo/hailo-ollama.yaml")
    success, seen = False, False
    try:
        with session.post(f"{url}/api/pull", json={"model": model, "stream": True}, stream=True,
                           timeout=(connect_timeout, 300)) as reply:
            if reply.status_code == 404:
                raise PullError(f"unknown model {model!r} (the server answered 404)")
            if reply.status_code != 200:
                raise PullError(f"the server refused the pull: HTTP {reply.status_code} {reply.text.strip()[:200]}")
            for raw in reply.iter_lines():
                if not raw.strip():
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if "error" in event:
                    raise PullError(f"pull of {model} failed: {event['error']}")
                progress.update(event)
                seen = True
                success = success or event.get("status") == "success"
    except requests.RequestException as err:
        if seen and not success and model in _present(session, url, connect_timeout):
            _verify_present(session, url, model, progress)  # the stream's end was cut (5.1.1)
            return
        raise PullError(f"the connection to {url} broke during the pull ({type(err).__name__}); "
                        "the server may have stopped: journalctl -u hailo-ollama.service -n 50") from None
    if not success:
        raise PullError(f"the pull of {model} ended without success; journalctl -u hailo-ollama.service -n 50")
