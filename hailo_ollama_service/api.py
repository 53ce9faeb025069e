"""Talking to the running server: where it is and whether it answers.

Uses http.client (not requests) for the probes that run at every service
start, so that start-up stays fast.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from hailo_ollama_service.probe import client_host, version, wait_ready
from hailo_ollama_service.schema import Value

__all__ = ["client_host", "version", "wait_ready", "base_url", "get_json", "post_json"]


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


