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
the LAN (README: "A model library on the LAN"). Like upstream, its TLS
certificate is not verified (a self-signed one works): what protects a pull
is the sha256 in the local manifest, checked by the server after the
download. Every message names the library used.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import threading
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


def upstream_version() -> str | None:
    """The installed hailo-gen-ai-model-zoo version (dpkg), or None."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "hailo-gen-ai-model-zoo"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def library_address(values: dict[str, Value], version: str | None = None) -> tuple[str, int]:
    """(host, port) of the model library the server pulls from: ``library.port``
    reaches upstream 5.1 only; 5.3 and later take the host alone and use 443."""
    host, port = str(values["library.host"]), int(values["library.port"])
    numbers = tuple(int(x) for x in re.findall(r"\d+", (version or "").split("-")[0])[:2])
    return (host, 443) if numbers >= (5, 3) else (host, port)


def where(host: str, port: int) -> str:
    """host:port, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo bounded in time (it has no timeout of its own); raises OSError."""
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
    if isinstance(err, socket.gaierror):
        raise OSError(f"cannot resolve {host}: {err.strerror}")
    if err is not None:
        raise OSError(f"cannot resolve {host}: {err}")
    raise OSError(f"cannot resolve {host}: no answer within {timeout:g} s")


def library_reachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Does the model library answer HTTPS? None, or the problem in a few words.

    Resolves, connects and completes a TLS handshake, all within ``timeout``,
    WITHOUT verifying the certificate, as upstream does (a LAN library with a
    self-signed certificate for another name is fine: the server checks every
    blob against the manifest's sha256). A library that is not HTTPS fails
    upstream's download (5.1 aborts on a streaming pull), so it counts as
    unreachable. Sends no request.
    """
    deadline = time.monotonic() + timeout
    try:
        infos = _resolve(host, port, timeout)
    except OSError as err:
        return str(err)
    problem = f"cannot connect to {where(host, port)}"
    for family, kind, proto, _, address in infos:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"{problem}: no answer within {timeout:g} s"
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as err:
            problem = f"cannot connect to {where(host, port)}: {err.strerror or err}"
            continue
        try:
            sock.settimeout(left)
            sock.connect(address)
        except socket.timeout:
            sock.close()
            problem = f"cannot connect to {where(host, port)}: no answer within {timeout:g} s"
            continue
        except OSError as err:
            sock.close()
            problem = f"cannot connect to {where(host, port)}: {err.strerror or err}"
            continue
        return _tls_problem(sock, host, port, max(deadline - time.monotonic(), 0.1), timeout)
    return problem


def _tls_problem(sock: socket.socket, host: str, port: int, left: float, timeout: float) -> str | None:
    """Complete a TLS handshake on a connected socket, certificate unchecked; None or the problem."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as upstream: integrity comes from the manifest's sha256
    try:
        ip = True
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            ip = False
        sock.settimeout(left)
        with context.wrap_socket(sock, server_hostname=None if ip else host):
            return None
    except socket.timeout:
        return f"{where(host, port)} accepts connections but completes no TLS handshake within {timeout:g} s"
    except ssl.SSLError as err:
        return f"{where(host, port)} does not answer HTTPS ({err.reason or err}); upstream pulls over HTTPS only"
    except OSError as err:
        return f"{where(host, port)} closed the connection during the TLS handshake ({err.strerror or err})"
    finally:
        sock.close()


def _present(session: Any, url: str, timeout: float) -> set[str]:
    """Names of the models whose blob the server has (``/api/tags``); an
    empty set when it cannot tell. Raises nothing."""
    import requests

    try:
        models = session.get(f"{url}/api/tags", timeout=timeout).json().get("models", [])
        return {str(m.get("name")) for m in models if isinstance(m, dict)}
    except (requests.RequestException, ValueError, AttributeError):
        return set()


HASH_FAILURES = ("bad hash", "hash verification failed")  # 5.1's text, 5.3's and 5.4's


def _delete(session: Any, url: str, model: str, timeout: float) -> bool:
    """Have the server delete the blob of ``model`` (it runs as the user that
    owns the blob tree; nothing here writes there). True when it did."""
    import requests

    try:
        return session.delete(f"{url}/api/delete", json={"model": model}, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _answers(session: Any, url: str, timeout: float) -> bool:
    """Does /api/version answer right now?"""
    import requests

    try:
        return session.get(f"{url}/api/version", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _verify_present(session: Any, url: str, model: str, progress: Progress, library: str) -> None:
    """Have the server check the present blob of ``model`` (a non-streaming
    pull: upstream hashes it and downloads nothing). Raises PullError when
    the server does not answer success; a blob that failed the hash check
    (upstream 5.1 leaves it in place) is deleted through the API."""
    import requests

    progress.update({"status": "verifying sha256 digest"})
    try:
        reply = session.post(f"{url}/api/pull", json={"model": model, "stream": False}, timeout=(5, 600))
        answer = reply.json() if reply.headers.get("Content-Type", "").startswith("application/json") else {}
        text = reply.text
    except (requests.RequestException, ValueError):
        answer, text = None, ""
    if isinstance(answer, dict) and answer.get("status") == "success":
        progress.update(answer)
        return
    detail = (answer.get("error") if isinstance(answer, dict) and answer.get("error")
              else _oatpp_error(text) or "no success")
    if any(failure in str(detail) for failure in HASH_FAILURES):
        deleted = _delete(session, url, model, 30)
        raise PullError(f"the blob of {model} fails its sha256 check ({detail}) after a download from "
                        f"library {library}: the library serves another file than the manifest names"
                        f"{'; the server deleted it' if deleted else ''}")
    raise PullError(f"the server could not verify the present blob of {model} ({detail}); "
                    "journalctl -u hailo-ollama.service -n 50")


def _oatpp_error(text: str) -> str:
    """The first line of an oatpp error page's stack trace ("  - bad hash"), or ""."""
    for line in text.splitlines():
        if line.startswith("  - "):
            return line[4:].strip()
    return ""


def _after_crash(session: Any, url: str, model: str, library: str, wait: float) -> PullError:
    """The server died during a streaming pull (upstream 5.1 aborts on every
    failed download). Wait for systemd to restart it, have it delete what
    the failed download left as the model's blob, and say what happened."""
    deadline = time.monotonic() + wait
    while not _answers(session, url, 2):
        if time.monotonic() >= deadline:
            return PullError(f"the server stopped during the pull of {model} from library {library} and has "
                             f"not answered again within {wait:g} s: systemctl status hailo-ollama.service; "
                             "why: journalctl -u hailo-ollama.service -n 50")
        time.sleep(0.5)
    left = ""
    if model in _present(session, url, 5):
        left = ("; the server deleted the blob the failed download left" if _delete(session, url, model, 30)
                else "; the blob the failed download left is still listed: delete the model "
                     f"(curl -X DELETE {url}/api/delete -d '{{\"model\": \"{model}\"}}')")
    return PullError(f"the pull of {model} from library {library} failed and the server restarted (upstream 5.1 "
                     "stops when a download fails: a blob whose sha256 does not match the manifest, a library "
                     f"that is not HTTPS, a full disk){left}; why: journalctl -u hailo-ollama.service -n 50")


def pull(values: dict[str, Value], model: str, progress: Progress,
         reachable: Callable[[str, int], str | None] | None = None,
         connect_timeout: float = 5.0, version: Callable[[], str | None] = upstream_version,
         restart_wait: float = 60.0) -> None:
    """Pull ``model`` through the configured server, reporting progress.

    Raises PullError for an API that is down, an unknown model, an
    unreachable library or a failed download; KeyboardInterrupt closes the
    connection (the server finishes or drops the download on its own).
    ``reachable`` probes the library (default: library_reachable),
    ``version`` tells the upstream version (which library port applies),
    ``restart_wait`` bounds the wait for a server that died mid-pull.
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
    host, port = library_address(values, version())
    library = where(host, port)
    if model in _present(session, url, connect_timeout):
        progress.update({"status": f"{model} is present: the server checks its sha256"})
        _verify_present(session, url, model, progress, library)
        return
    problem = (reachable or library_reachable)(host, port)
    if problem:
        raise PullError(f"the model library is unreachable: {library} ({problem}); check the network, or "
                        "library.host/library.port: hailo-ollama-service config")
    progress.update({"status": f"downloading {model} from library {library}"})
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
                    raise PullError(f"the pull of {model} from library {library} failed: {event['error']}")
                progress.update(event)
                seen = True
                success = success or event.get("status") == "success"
    except requests.RequestException as err:
        if not _answers(session, url, 2):
            raise _after_crash(session, url, model, library, restart_wait) from None
        if seen and not success and model in _present(session, url, connect_timeout):
            _verify_present(session, url, model, progress, library)  # the stream's end was cut (5.1.1)
            return
        raise PullError(f"the connection to {url} broke during the pull ({type(err).__name__}); "
                        "journalctl -u hailo-ollama.service -n 50") from None
    if not success:
        raise PullError(f"the pull of {model} from library {library} ended without success; "
                        "journalctl -u hailo-ollama.service -n 50")
