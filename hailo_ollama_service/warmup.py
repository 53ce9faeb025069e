"""Warm-up after install and boot: pull ``warmup.model`` and load it once.

Run by hailo-ollama-warmup.service in the background; it logs what it does
and never fails the install: every problem is reported and exit 0 follows.
"""

from __future__ import annotations

from typing import Callable

from hailo_ollama_service import api
from hailo_ollama_service.schema import Value

PULL_TIMEOUT = 3600.0
CHAT_TIMEOUT = 180.0


def run(values: dict[str, Value], log: Callable[[str], None]) -> int:
    """Pull and load the warm-up model named in ``values``.

    Takes the effective settings and a logging callback; returns 0 always
    (problems are logged, the service keeps working without the warm-up).
    """
    model = str(values["warmup.model"])
    if not model:
        log("warmup: no warmup.model set; nothing to do")
        return 0
    import requests

    session = api.local_session()
    url = api.base_url(values)
    host = api.client_host(str(values["server.host"]))
    if api.wait_ready(host, int(values["server.port"]), 120.0) is None:
        log(f"warmup: {url} does not answer; skipped")
        return 0
    try:
        tags = session.get(f"{url}/api/tags", timeout=10).json().get("models", [])
        if any(m.get("name") == model for m in tags if isinstance(m, dict)):
            log(f"warmup: {model} is already present")
        else:
            log(f"warmup: pulling {model} (this can take a while)")
            # Non-streaming: a streaming pull whose library is unreachable
            # kills upstream 5.1, a non-streaming one answers 500.
            reply = session.post(f"{url}/api/pull", json={"model": model, "stream": False},
                                  timeout=PULL_TIMEOUT)
            body = reply.json() if reply.content else {}
            if reply.status_code != 200 or body.get("status") != "success":
                log(f"warmup: pull of {model} failed: HTTP {reply.status_code} {reply.text.strip()[:200]}")
                return 0
            log(f"warmup: pulled {model}")
        reply = session.post(f"{url}/api/chat", timeout=CHAT_TIMEOUT, json={
            "model": model, "stream": False,
            "messages": [{"role": "user", "content": "Hi"}]})
        if reply.status_code == 200:
            log(f"warmup: {model} is loaded")
        else:
            log(f"warmup: loading {model} failed: HTTP {reply.status_code} {reply.text.strip()[:200]}")
            api.unload_after_failed_load(session, url, model)
    except (requests.RequestException, ValueError) as err:
        log(f"warmup: {type(err).__name__}: {err}")
    return 0
