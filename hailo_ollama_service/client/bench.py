"""``hailo-ollama-service bench``: time to first token and tokens/s on this Pi.

Unloads the model first, then sends a small fixed prompt through
/api/generate N times: the first run is cold (it loads the model, 30-60 s
on a Pi), the others warm. Prints the cold and the warm (median) time to
first token, the median tokens/s, and the SoC temperature before and after
so throttling shows. A model the server does not offer (a name of another
Hailo release, a typo) is refused before anything is unloaded, with what
the server offers instead (client.offered).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from hailo_ollama_service import untrusted
from hailo_ollama_service.client import api, httpclient, offered
from hailo_ollama_service.config.schema import Value
from hailo_ollama_service.untrusted import shown

PROMPT = "Name three colours of the rainbow."
RUN_TIMEOUT = 600.0      # one generation, the cold model load (30-60 s on a Pi) included
RUN_IDLE = 300.0         # ... with no byte for this long counting as a dead stream
UNLOAD_TIMEOUT = 300.0   # the unload before the first run waits behind a running generation
TAGS_TIMEOUT = 5.0


class BenchError(Exception):
    """The benchmark cannot run; ``str()`` is one line."""


@dataclass(frozen=True)
class Run:
    """One generation: seconds to the first token, tokens/s, and how measured."""

    first_token: float
    tokens_per_second: float
    from_server: bool


def _count(value: object) -> int | None:
    """``value`` when it is a plausible count (an int, 0 <= value < 2**63), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63 else None


def one_run(host: str, port: int, model: str, timeout: float = RUN_TIMEOUT, idle: float = RUN_IDLE,
            clock: Callable[[], float] = time.perf_counter) -> Run:
    """Stream one /api/generate of PROMPT on host:port; return its Run.

    The whole generation gets ``timeout`` seconds, and ends after ``idle``
    seconds without a byte. Raises BenchError (one line).
    """
    start = clock()
    first: float | None = None
    chunks = 0
    final: dict = {}
    try:
        with httpclient.stream(host, port, "POST", "/api/generate",
                               {"model": model, "prompt": PROMPT, "stream": True}, timeout, idle) as reply:
            if reply.status != 200:
                detail = reply.excerpt()
                reply.close()
                try:
                    api.unload(host, port, model)  # upstream crashes on the next request after a failed load
                except OSError:
                    pass
                raise BenchError(f"generate failed: HTTP {reply.status} {detail}")
            for raw in reply.lines():
                event = untrusted.loads(raw, httpclient.LINE_CAP)
                if not isinstance(event, dict):
                    raise ValueError("not an object")
                if "error" in event:
                    hint = (f"; pull it first: hailo-ollama-service pull {shown(model)}"
                            if "not found" in str(event["error"]) else "")
                    raise BenchError(f"generate failed: {shown(event['error'])}{hint}")
                if event.get("response"):
                    chunks += 1
                    if first is None:
                        first = clock() - start
                if event.get("done"):
                    final = event
    except httpclient.HttpError as err:
        raise BenchError(str(err)) from None
    except ValueError:
        raise BenchError("the server sent something that is not NDJSON") from None
    wall = clock() - start
    first_token = first if first is not None else wall
    count, duration = _count(final.get("eval_count")), _count(final.get("eval_duration"))
    if count is not None and duration:
        return Run(first_token, count / (duration / 1e9), True)
    # Upstream (5.1.1, 5.3) sends eval_count but never eval_duration: its
    # tokens over the time from the first token to the last.
    generating = wall - first_token
    if count is not None and count > 1 and generating > 0:
        return Run(first_token, (count - 1) / generating, True)
    return Run(first_token, chunks / wall if wall > 0 else 0.0, False)


def unload(host: str, port: int, model: str) -> None:
    """Unload ``model`` (within UNLOAD_TIMEOUT); raise BenchError if the server does not answer."""
    try:
        api.unload(host, port, model, UNLOAD_TIMEOUT)
    except httpclient.HttpError as err:
        raise BenchError(str(err)) from None


def pick_model(host: str, port: int, wanted: str) -> str:
    """Return ``wanted``, else the first pulled model (/api/tags); raise BenchError if none,
    or (config.renames.hint) when the server lists models and ``wanted`` is not one."""
    if wanted:
        unknown = offered.not_offered(host, port, wanted, TAGS_TIMEOUT)
        if unknown:
            raise BenchError(unknown)
        return wanted
    try:
        status, body = api.get_json(host, port, "/api/tags", TAGS_TIMEOUT)
    except httpclient.HttpError as err:
        raise BenchError(str(err)) from None
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        raise BenchError(f"{httpclient.url(host, port)}/api/tags answered no model list (HTTP {status})")
    names = [m["name"] for m in models if isinstance(m, dict) and isinstance(m.get("name"), str) and m["name"]]
    if not names:
        raise BenchError("no model is pulled yet; try: hailo-ollama-service pull qwen2:1.5b")
    return names[0]


def bench(values: dict[str, Value], model: str, runs: int, temperature: Callable[[], float | None],
          out: Callable[[str], None]) -> int:
    """Run the benchmark and print its figures; return the exit status."""
    host, port = api.address(values)
    chosen = pick_model(host, port, model or str(values["warmup.model"]))
    unload(host, port, chosen)  # so that the first run is a cold one
    before = temperature()
    results = []
    for i in range(runs):
        result = one_run(host, port, chosen)
        results.append(result)
        out(f"run {i + 1}/{runs}: first token {result.first_token:.2f} s, {result.tokens_per_second:.1f} tokens/s")
    after = temperature()
    source = "the server's eval_count" if all(r.from_server for r in results) else "wall clock"
    out(f"model:               {shown(chosen)}")
    out(f"runs:                {runs}")
    out(f"first token, cold:   {results[0].first_token:.2f} s (the model loaded first)")
    if len(results) > 1:
        out(f"first token, warm:   {statistics.median(r.first_token for r in results[1:]):.2f} s "
            f"(median of {len(results) - 1})")
    out(f"tokens/s, median:    {statistics.median(r.tokens_per_second for r in results):.1f} ({source})")
    temps = [f"{t:.1f} °C" if t is not None else "n/a" for t in (before, after)]
    out(f"SoC temperature:     {temps[0]} before, {temps[1]} after")
    return 0
