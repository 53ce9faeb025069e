"""Which models the server offers (``/hailo/v1/list``), and the hint for one it does not.

``pull``, ``bench``, the warm-up and keep-warm ask here before they use a
model name: a name from another Hailo release (config.renames) then fails
with one line naming what this server offers, instead of a bare 404 or
``model not found``. The list is read through api.get_json: a total deadline
and httpclient.BODY_CAP bytes; what it holds is hostile and only ever
printed through config.renames.hint, which escapes it.
"""

from __future__ import annotations

from hailo_ollama_service.client import api
from hailo_ollama_service.config import renames

LIST_PATH = "/hailo/v1/list"


def listed(host: str, port: int, timeout: float) -> list[str]:
    """Return the model names the server at host:port lists (strings only;
    [] for an answer that is not 200 or holds no list).

    ``timeout`` bounds the whole exchange. Raises HttpError (an OSError)
    when the server does not answer.
    """
    status, body = api.get_json(host, port, LIST_PATH, timeout)
    models = body.get("models") if isinstance(body, dict) and status == 200 else None
    return [name for name in models if isinstance(name, str)] if isinstance(models, list) else []


def not_offered(host: str, port: int, model: str, timeout: float) -> str | None:
    """Return the one-line hint (config.renames.hint) when the server lists
    models and ``model`` is not among them; None when it is, or when the
    list cannot be had within ``timeout`` (the request that follows then
    says what is wrong). Raises nothing."""
    try:
        names = listed(host, port, timeout)
    except OSError:
        return None
    return renames.hint(model, names)


__all__ = ["listed", "not_offered", "LIST_PATH"]
