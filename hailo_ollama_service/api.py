"""Talking to the running server: where it is and whether it answers.

Uses http.client (not requests) for the probes that run at every service
start, so that start-up stays fast.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any, Callable

from hailo_ollama_service.schema import Value


def client_host(listen_host: str) -> str:
    """Map a listen address to one a local client can connect to.

    0.0.0.0 -> 127.0.0.1 and :: -> ::1; anything else is returned as is.
    """
    if listen_host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if listen_host in ("::", "[::]"):
        return "::1"
    return listen_host


def base_url(values: dict[str, Value]) -> str:
    """Return ``http://host:port`` of the API for the effective settings."""
    host = client_host(str(values["server.host"]))
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{values['server.port']}"


def _request(method: str, host: str, port: int, path: str, timeout: float,
             doc: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Send one request (never through a proxy); return (status, decoded JSON body or None).

    Raises OSError/HTTPException on connection problems or when the server
    is slower than ``timeout``.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if doc is None:
            conn.request(method, path, headers={"Accept": "application/json"})
        else:
            conn.request(method, path, body=json.dumps(doc), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, None


def get_json(host: str, port: int, path: str, timeout: float) -> tuple[int, Any]:
    """GET ``path``; return (status, decoded JSON or None). Raises like ``_request``."""
    return _request("GET", host, port, path, timeout)


def post_json(host: str, port: int, path: str, doc: dict[str, Any], timeout: float) -> tuple[int, Any]:
    """POST ``doc`` as JSON; return (status, decoded JSON or None). Raises like ``_request``."""
    return _request("POST", host, port, path, timeout, doc)


def local_session():  # type: ignore[no-untyped-def]
    """Return a requests Session for the local server: never through $http_proxy.

    requests is imported here, not at module level, so that the probes that
    run at every service start stay fast.
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def unload_after_failed_load(session, url: str, model: str) -> None:  # type: ignore[no-untyped-def]
    """Unload ``model`` with keep_alive 0 after a failed load.

    Upstream marks a model whose load failed as loaded, and crashes on the
    next request for it unless it is unloaded first. Raises what requests raises.
    """
    session.post(f"{url}/api/generate", json={"model": model, "keep_alive": 0, "stream": False}, timeout=30)


def version(host: str, port: int, timeout: float = 2.0) -> str | None:
    """Return the server's ``/api/version`` string, or None if it does not answer."""
    try:
        status, body = get_json(host, port, "/api/version", timeout)
    except (OSError, http.client.HTTPException):
        return None
    if status == 200 and isinstance(body, dict) and isinstance(body.get("version"), str):
        return body["version"]
    return None


def wait_ready(host: str, port: int, timeout: float, interval: float = 0.25,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               pid: int | None = None) -> str | None:
    """Poll ``/api/version`` until it answers or ``timeout`` seconds pass.

    Each probe is bounded by the time left, so a server that accepts and
    never answers cannot stretch the wait. With ``pid`` (the unit's
    $MAINPID), probe the address that process actually listens on, and give
    up at once when it has exited. Returns the version or None.
    """
    from hailo_ollama_service import checks

    deadline = clock() + timeout
    while True:
        left = deadline - clock()
        if left <= 0:
            return None
        targets = [(host, port)]
        if pid is not None:
            if not checks.pid_alive(pid):
                return None
            targets = [(client_host(addr), p) for addr, p in checks.pid_listeners(pid)]
        for address, number in targets:
            found = version(address, number, timeout=max(0.05, min(2.0, left)))
            if found is not None:
                return found
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(interval, left))
