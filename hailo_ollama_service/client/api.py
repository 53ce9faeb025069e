"""Talking to the running server: where it is and whether it answers.

Every exchange goes through httpclient (a total deadline and a byte cap;
never through a proxy). The probes that run at every service start come
from probe.py, which imports even less.
"""

from __future__ import annotations

from typing import Any

from hailo_ollama_service import untrusted
from hailo_ollama_service.client import httpclient
from hailo_ollama_service.client.httpclient import HttpError
from hailo_ollama_service.config.schema import Value, server_listen
from hailo_ollama_service.probe import client_host, version, wait_ready

__all__ = ["client_host", "version", "wait_ready", "base_url", "address", "get_json", "post_json", "unload",
           "HttpError", "UNLOAD_TIMEOUT"]

UNLOAD_TIMEOUT = 30.0


def address(values: dict[str, Value]) -> tuple[str, int]:
    """(host, port) a local client connects to for the effective settings: the
    server itself, on loopback behind the access front when access is on."""
    host, port = server_listen(values)
    return client_host(str(host)), int(port)


def base_url(values: dict[str, Value]) -> str:
    """Return ``http://host:port`` of the API for the effective settings."""
    return httpclient.url(*address(values))


def _request(method: str, host: str, port: int, path: str, timeout: float,
             doc: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Send one request; return (status, decoded JSON body, or None when the body is not
    JSON within httpclient.BODY_CAP bytes and untrusted.JSON_DEPTH levels).

    ``timeout`` bounds the whole exchange. Raises HttpError (an OSError).
    """
    reply = httpclient.request(host, port, method, path, doc, deadline=timeout)
    try:
        return reply.status, untrusted.loads(reply.body, httpclient.BODY_CAP)
    except ValueError:
        return reply.status, None


def get_json(host: str, port: int, path: str, timeout: float) -> tuple[int, Any]:
    """GET ``path``; return (status, decoded JSON or None). Raises like ``_request``."""
    return _request("GET", host, port, path, timeout)


def post_json(host: str, port: int, path: str, doc: dict[str, Any], timeout: float) -> tuple[int, Any]:
    """POST ``doc`` as JSON; return (status, decoded JSON or None). Raises like ``_request``."""
    return _request("POST", host, port, path, timeout, doc)


def unload(host: str, port: int, model: str, timeout: float = UNLOAD_TIMEOUT) -> int:
    """Unload ``model`` (``/api/generate`` with keep_alive 0) within ``timeout`` seconds; return the status.

    Also what follows a failed load: upstream marks a model whose load
    failed as loaded, and crashes on the next request for it unless it is
    unloaded first. Raises HttpError.
    """
    return httpclient.request(host, port, "POST", "/api/generate",
                              {"model": model, "keep_alive": 0, "stream": False}, deadline=timeout).status
