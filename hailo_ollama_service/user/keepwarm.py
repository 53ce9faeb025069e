"""Keep the warm-up model loaded: what hailo-ollama-keepwarm.timer runs every few minutes.

Upstream unloads a model after 5 idle minutes, and the first answer after
that waits 30-60 s for a reload. ``keep_alive`` below 0 means "never
unload", but only until the next request without one, which sets the timer
back to 5 minutes. So a timer (not a resident process) re-asserts it more
often than that: a load request, ``/api/generate`` with the model and
``keep_alive: -1`` and no prompt, which reloads nothing when the model is
loaded already. It waits at most LOAD_TIMEOUT behind a running generation.

A failed load (no device, or another program holds it) is unloaded at once,
because upstream crashes on the next request after a failed load; then the
timer backs off for BACKOFF and the failure is logged once, not every few
minutes. The last outcome lives in the service user's own tree. A model
that is not downloaded and that the server does not offer either (a name of
another Hailo release, see config.renames) is logged once with what the
server offers instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from hailo_ollama_service import probe, untrusted
from hailo_ollama_service.client import api, httpclient, offered
from hailo_ollama_service.config.schema import Value
from hailo_ollama_service.fs import nofollow
from hailo_ollama_service.fs.atomic import WriteError, write_atomic
from hailo_ollama_service.untrusted import shown

PROBE_TIMEOUT = 5.0
TAGS_TIMEOUT = 10.0
LOAD_TIMEOUT = 120.0   # the whole load request: connect, the wait behind a generation, the answer
BACKOFF = 1800.0
# Worst case PROBE + TAGS + LOAD + api.UNLOAD_TIMEOUT = 165 s, within the unit's TimeoutStartSec=180
# (a model not downloaded costs a list read of TAGS_TIMEOUT instead of the load).


def read_state(path: Path) -> dict[str, Any]:
    """The last outcome ({} when absent or unreadable; never follows a link or blocks)."""
    try:
        with nofollow.opened_dir(path.parent) as fd:
            data = nofollow.read_regular(fd, path.name, 4096, path.parent)
        doc = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _save(path: Path, state: dict[str, Any]) -> None:
    try:
        write_atomic(path, (json.dumps(state, sort_keys=True) + "\n").encode(), 0o644)
    except WriteError:
        pass  # only the log-once and the back-off are lost


def run(values: dict[str, Value], log: Callable[[str], None], state_path: Path,
        clock: Callable[[], float] = time.time) -> int:
    """Load ``warmup.model`` with keep_alive -1 when ``warmup.keep_loaded`` is on.

    Takes the served settings, a logging callback, the state file and a
    clock. Returns 0 always: every problem is logged (once) and the next run
    tries again, so the unit never piles up failures.
    """
    model = str(values["warmup.model"])
    if not values["warmup.keep_loaded"] or not model:
        log("keep-warm: warmup.keep_loaded is off or warmup.model is empty; nothing to keep loaded")
        return 0
    state = read_state(state_path)
    failed_at = state.get("failed_at")
    if isinstance(failed_at, (int, float)) and 0 <= clock() - failed_at < BACKOFF:
        return 0

    def outcome(reason: str, message: str, failed: bool = False) -> int:
        if state.get("reason") != reason:
            log(message)
        _save(state_path, {"reason": reason, **({"failed_at": clock()} if failed else {})})
        return 0

    host, port = api.address(values)
    url = api.base_url(values)
    if probe.version(host, port, PROBE_TIMEOUT) is None:
        return outcome("down", f"keep-warm: {url} does not answer; trying again at the next run")
    try:
        status, tags = api.get_json(host, port, "/api/tags", TAGS_TIMEOUT)
    except OSError as err:
        return outcome("error", f"keep-warm: {err}")
    models = tags.get("models") if isinstance(tags, dict) else None
    if not isinstance(models, list):
        return outcome("error", f"keep-warm: {url}/api/tags answered no model list (HTTP {status})")
    if not any(isinstance(m, dict) and m.get("name") == model for m in models):
        unknown = offered.not_offered(host, port, model, TAGS_TIMEOUT)
        if unknown:  # a name of another Hailo release: no pull will ever bring it
            return outcome("not offered", f"keep-warm: {unknown}; change warmup.model "
                           "(hailo-ollama-service config shows where it is set)")
        return outcome("missing", f"keep-warm: {model} is not downloaded yet "
                       f"(hailo-ollama-warmup.service pulls it; or: hailo-ollama-service pull {model})")
    try:
        reply = httpclient.request(host, port, "POST", "/api/generate",
                                   {"model": model, "keep_alive": -1, "stream": False}, LOAD_TIMEOUT)
    except httpclient.HttpError as err:
        if err.timed_out:
            return outcome("busy", f"keep-warm: {url} was busy for over {LOAD_TIMEOUT:g} s (a long generation?); "
                           "trying again at the next run")
        return outcome("error", f"keep-warm: {err}")
    try:
        body = untrusted.loads(reply.body, httpclient.BODY_CAP) if reply.body else {}
    except ValueError:
        body = {}
    if reply.status == 200 and not (isinstance(body, dict) and body.get("error")):
        return outcome("loaded", f"keep-warm: {model} is loaded and kept loaded (keep_alive -1)")
    try:
        api.unload(host, port, model)
    except OSError:
        pass
    return outcome(f"failed {reply.status}", f"keep-warm: loading {shown(model)} failed: HTTP {reply.status} "
                   f"{shown(reply.body.strip())}; unloaded it, and trying again in {BACKOFF / 60:g} minutes "
                   "(no Hailo device, or another program holds it?)", failed=True)
