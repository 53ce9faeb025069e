"""Warm-up after install and boot: pull ``warmup.model`` and load it once.

Run by hailo-ollama-warmup.service in the background; it logs what it does
and never fails the install: every problem is reported and exit 0 follows.
A model the server does not offer (a name of another Hailo release, see
config.renames) is not pulled: the log line names what it offers instead.
"""

from __future__ import annotations

from typing import Callable

from hailo_ollama_service import untrusted
from hailo_ollama_service.client import api, httpclient, offered
from hailo_ollama_service.config.schema import Value
from hailo_ollama_service.untrusted import shown

READY_TIMEOUT = 120.0   # wait for the API after a (re)start
TAGS_TIMEOUT = 10.0
PULL_TIMEOUT = 3600.0   # the whole non-streaming pull: it answers once the download is done
CHAT_TIMEOUT = 180.0    # the whole first chat: the model load (30-60 s on a Pi) and a short answer


def run(values: dict[str, Value], log: Callable[[str], None]) -> int:
    """Pull and load the warm-up model named in ``values``.

    Takes the effective settings and a logging callback; returns 0 always
    (problems are logged, the service keeps working without the warm-up).
    Every request has a total deadline (the constants above) and a byte cap.
    """
    model = str(values["warmup.model"])
    if not model:
        log("warmup: no warmup.model set; nothing to do")
        return 0
    host, port = api.address(values)
    url = api.base_url(values)
    if api.wait_ready(host, port, READY_TIMEOUT) is None:
        log(f"warmup: {url} does not answer; skipped")
        return 0
    try:
        _status, tags = api.get_json(host, port, "/api/tags", TAGS_TIMEOUT)
        models = tags.get("models") if isinstance(tags, dict) else None
        if isinstance(models, list) and any(isinstance(m, dict) and m.get("name") == model for m in models):
            log(f"warmup: {model} is already present")
        else:
            unknown = offered.not_offered(host, port, model, TAGS_TIMEOUT)
            if unknown:  # a name of another Hailo release: say what this one offers
                log(f"warmup: {unknown}; change warmup.model (hailo-ollama-service config shows where it is set)")
                return 0
            log(f"warmup: pulling {model} (this can take a while)")
            # Non-streaming: a streaming pull whose library is unreachable
            # kills upstream 5.1, a non-streaming one answers 500.
            reply = httpclient.request(host, port, "POST", "/api/pull", {"model": model, "stream": False},
                                       PULL_TIMEOUT)
            try:
                body = untrusted.loads(reply.body, httpclient.BODY_CAP) if reply.body else {}
            except ValueError:
                body = {}
            if reply.status != 200 or not isinstance(body, dict) or body.get("status") != "success":
                log(f"warmup: pull of {shown(model)} failed: HTTP {reply.status} {shown(reply.body.strip())}")
                return 0
            log(f"warmup: pulled {model}")
        reply = httpclient.request(host, port, "POST", "/api/chat", {
            "model": model, "stream": False, "messages": [{"role": "user", "content": "Hi"}]}, CHAT_TIMEOUT)
        if reply.status == 200:
            log(f"warmup: {model} is loaded")
        else:
            log(f"warmup: loading {shown(model)} failed: HTTP {reply.status} {shown(reply.body.strip())}")
            api.unload(host, port, model)
    except OSError as err:
        log(f"warmup: {err}")
    return 0
