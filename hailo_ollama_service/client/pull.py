"""``hailo-ollama-service pull MODEL``: a model download with progress.

Upstream 5.1 dies when a *streaming* pull cannot reach the model library,
so the library is probed from here first and an unreachable one is
reported without asking the server. The model name is checked against the
server's list, so a typo or a name of another Hailo release (5.2 renamed
and dropped models) gets "did you mean" or the names the server offers
(config.renames) instead of a cryptic error.
A model whose blob is already present (listed by /api/tags) needs no library:
upstream checks the blob's sha256 and skips the download, so that pull works
offline and is not refused; it is asked without streaming.

The real 5.1.1 server ends every streaming pull without the last chunk's end
and drops the connection, so its last line ("success") never reaches an HTTP
client. When the stream breaks after progress, the server still answers and
the blob is then present, the verdict comes from a non-streaming pull:
upstream checks the blob's sha256 again and answers success or an error with
a proper length. When the server no longer answers, it died: upstream 5.1
aborts on every failed download, a blob whose sha256 does not match the
manifest included, and leaves that blob in place (renamed before the check).
The pull then waits for systemd to restart the server and has the server
delete the model's blob through the API, so a refused blob never stays.

The model library is whatever ``library.host``/``library.port`` name (5.3
and later take the host only, on port 443): Hailo's, or an HTTPS server on
the LAN (docs/fleet.md: "A model library on the LAN"). Like upstream, its TLS
certificate is not verified (a self-signed one works): what protects a pull
is the sha256 in the local manifest, checked by the server after the
download. Every message names the library used.
"""

from __future__ import annotations

import time
from typing import IO, Any, Callable

from hailo_ollama_service import untrusted
from hailo_ollama_service.client import api, httpclient, offered
from hailo_ollama_service.client.httpclient import HttpError
from hailo_ollama_service.client.library import library_address, library_reachable, upstream_version, where
from hailo_ollama_service.config import renames
from hailo_ollama_service.config.schema import Value
from hailo_ollama_service.untrusted import shown

SMALL_TIMEOUT = 5.0           # /hailo/v1/list, /api/tags (the ``connect_timeout`` of ``pull``)
ANSWERS_TIMEOUT = 2.0         # /api/version: is the server up?
DELETE_TIMEOUT = 30.0         # /api/delete of a refused blob
VERIFY_TIMEOUT = 600.0        # a non-streaming pull of a present blob: upstream hashes it
PULL_TIMEOUT = 6 * 3600.0     # a streaming pull: a multi-GB download, start to end
PULL_IDLE = 300.0             # ... with no byte for this long counting as a dead stream


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
        return (f"pulling {shown(digest[:19])}: {percent:5.1f}% {_size(done)}/{_size(total)} "
                f"{_size(rate)}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def update(self, event: dict[str, Any]) -> None:
        """Show one NDJSON event of /api/pull (the server's text escaped, its figures
        used only when they are sizes: 0 <= completed <= total < 2**63)."""
        status = str(event.get("status", ""))
        total, done = event.get("total"), event.get("completed")
        if status == "pulling" and isinstance(total, int) and isinstance(done, int) and 0 <= done <= total < 2 ** 63:
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
            self.out.write(("\r\x1b[K" if self.tty else "") + shown(status) + "\n")
            self.out.flush()


def _present(host: str, port: int, timeout: float) -> set[str]:
    """Names of the models whose blob the server has (``/api/tags``); an
    empty set when it cannot tell. Raises nothing."""
    try:
        _status, body = api.get_json(host, port, "/api/tags", timeout)
    except OSError:
        return set()
    models = body.get("models") if isinstance(body, dict) else None
    return {str(m.get("name")) for m in models if isinstance(m, dict)} if isinstance(models, list) else set()


HASH_FAILURES = ("bad hash", "hash verification failed")  # 5.1's text, 5.3's and 5.4's


def _delete(host: str, port: int, model: str, timeout: float = DELETE_TIMEOUT) -> bool:
    """Have the server delete the blob of ``model`` (it runs as the user that
    owns the blob tree; nothing here writes there). True when it did."""
    try:
        return httpclient.request(host, port, "DELETE", "/api/delete", {"model": model}, timeout).status == 200
    except OSError:
        return False


def _answers(host: str, port: int, timeout: float = ANSWERS_TIMEOUT) -> bool:
    """Does /api/version answer right now (within ``timeout`` seconds)?"""
    try:
        return httpclient.request(host, port, "GET", "/api/version", None, timeout).status == 200
    except OSError:
        return False


def _verify_present(host: str, port: int, model: str, progress: Progress, library: str) -> None:
    """Have the server check the present blob of ``model`` (a non-streaming
    pull, at most VERIFY_TIMEOUT: upstream hashes it and downloads nothing).
    Raises PullError when the server does not answer success; a blob that
    failed the hash check (upstream 5.1 leaves it in place) is deleted
    through the API."""
    progress.update({"status": "verifying sha256 digest"})
    try:
        reply = httpclient.request(host, port, "POST", "/api/pull", {"model": model, "stream": False},
                                   VERIFY_TIMEOUT)
        text = reply.body.decode("utf-8", "replace")
        answer = (untrusted.loads(reply.body, httpclient.BODY_CAP)
                  if reply.headers.get("content-type", "").startswith("application/json") else {})
    except (OSError, ValueError):
        answer, text = None, ""
    if isinstance(answer, dict) and answer.get("status") == "success":
        progress.update(answer)
        return
    detail = str(answer.get("error") if isinstance(answer, dict) and answer.get("error")
                 else _oatpp_error(text) or "no success")
    if any(failure in detail for failure in HASH_FAILURES):
        deleted = _delete(host, port, model)
        raise PullError(f"the blob of {shown(model)} fails its sha256 check ({shown(detail)}) after a download "
                        f"from library {library}: the library serves another file than the manifest names"
                        f"{'; the server deleted it' if deleted else ''}")
    raise PullError(f"the server could not verify the present blob of {shown(model)} ({shown(detail)}); "
                    "journalctl -u hailo-ollama.service -n 50")


def _oatpp_error(text: str) -> str:
    """The first line of an oatpp error page's stack trace ("  - bad hash"), or ""."""
    for line in text.splitlines():
        if line.startswith("  - "):
            return line[4:].strip()
    return ""


def _after_crash(host: str, port: int, model: str, library: str, wait: float) -> PullError:
    """The server died during a streaming pull (upstream 5.1 aborts on every
    failed download). Wait for systemd to restart it, have it delete what
    the failed download left as the model's blob, and say what happened."""
    deadline = time.monotonic() + wait
    url = httpclient.url(host, port)
    while not _answers(host, port):
        if time.monotonic() >= deadline:
            return PullError(f"the server stopped during the pull of {shown(model)} from library {library} and "
                             f"has not answered again within {wait:g} s: systemctl status hailo-ollama.service; "
                             "why: journalctl -u hailo-ollama.service -n 50")
        time.sleep(0.5)
    left = ""
    if model in _present(host, port, SMALL_TIMEOUT):
        left = ("; the server deleted the blob the failed download left" if _delete(host, port, model)
                else "; the blob the failed download left is still listed: delete the model "
                     f"(curl -X DELETE {url}/api/delete -d '{{\"model\": \"{shown(model)}\"}}')")
    return PullError(f"the pull of {shown(model)} from library {library} failed and the server restarted (upstream "
                     "5.1 stops when a download fails: a blob whose sha256 does not match the manifest, a library "
                     f"that is not HTTPS, a full disk){left}; why: journalctl -u hailo-ollama.service -n 50")


def pull(values: dict[str, Value], model: str, progress: Progress,
         reachable: Callable[[str, int], str | None] | None = None,
         connect_timeout: float = SMALL_TIMEOUT, version: Callable[[], str | None] = upstream_version,
         restart_wait: float = 60.0) -> None:
    """Pull ``model`` through the configured server, reporting progress.

    Raises PullError for an API that is down, an unknown model, an
    unreachable library or a failed download; KeyboardInterrupt closes the
    connection at once (upstream 5.1.1 then aborts, as seen on the real
    build, and systemd restarts it; a later pull checks or redoes the blob).
    ``reachable`` probes the library (default: library_reachable),
    ``version`` tells the upstream version (which library port applies),
    ``connect_timeout`` bounds each small request (the model lists),
    ``restart_wait`` bounds the wait for a server that died mid-pull. The
    streaming pull itself ends after PULL_TIMEOUT, or PULL_IDLE without a byte.
    """
    host, port = api.address(values)
    url = api.base_url(values)
    try:
        listed = offered.listed(host, port, connect_timeout)
    except HttpError as err:
        why = "" if err.kind == "connect" else f" properly ({err.reason})"
        raise PullError(f"the API at {url} does not answer{why}; check: systemctl status hailo-ollama.service") \
            from None
    unknown = renames.hint(model, listed)  # a name of another Hailo release, a typo: what it offers
    if unknown:
        raise PullError(unknown)
    host_l, port_l = library_address(values, version())
    library = where(host_l, port_l)
    if model in _present(host, port, connect_timeout):
        progress.update({"status": f"{model} is present: the server checks its sha256"})
        _verify_present(host, port, model, progress, library)
        return
    problem = (reachable or library_reachable)(host_l, port_l)
    if problem:
        raise PullError(f"the model library is unreachable: {library} ({problem}); check the network, or "
                        "library.host/library.port: hailo-ollama-service config")
    progress.update({"status": f"downloading {model} from library {library}"})
    success, seen = False, False
    try:
        with httpclient.stream(host, port, "POST", "/api/pull", {"model": model, "stream": True},
                               PULL_TIMEOUT, PULL_IDLE) as reply:
            if reply.status == 404:
                raise PullError(f"{shown(model)}: not offered by this server (it answered 404)")
            if reply.status != 200:
                raise PullError(f"the server refused the pull: HTTP {reply.status} {reply.excerpt()}")
            for raw in reply.lines():
                try:
                    event = untrusted.loads(raw, httpclient.LINE_CAP)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                if "error" in event:
                    raise PullError(f"the pull of {shown(model)} from library {library} failed: "
                                    f"{shown(event['error'])}")
                progress.update(event)
                seen = True
                success = success or event.get("status") == "success"
    except HttpError as err:
        if not _answers(host, port):
            raise _after_crash(host, port, model, library, restart_wait) from None
        if seen and not success and model in _present(host, port, connect_timeout):
            _verify_present(host, port, model, progress, library)  # the stream's end was cut (5.1.1)
            return
        raise PullError(f"the connection to {url} broke during the pull ({err.reason}); "
                        "journalctl -u hailo-ollama.service -n 50") from None
    if not success:
        raise PullError(f"the pull of {shown(model)} from library {library} ended without success; "
                        "journalctl -u hailo-ollama.service -n 50")
