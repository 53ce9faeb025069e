"""``hailo-ollama-service bench``: time to first token and tokens/s on this Pi.

Unloads the model first, then sends a small fixed prompt through
/api/generate N times: the first run is cold (it loads the model, 30-60 s
on a Pi), the others warm. Prints the cold and the warm (median) time to
first token, the median tokens/s, and the SoC temperature before and after
so throttling shows.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable

from hailo_ollama_service import api
from hailo_ollama_service.schema import Value

PROMPT = "Name three colours of the rainbow."


class BenchError(Exception):
    """The benchmark cannot run; ``str()`` is one line."""


@dataclass(frozen=True)
class Run:
    """One generation: seconds to the first token, tokens/s, and how measured."""

    first_token: float
    tokens_per_second: float
    from_server: bool


def one_run(url: str, model: str, timeout: float = 300.0,
            clock: Callable[[], float] = time.perf_counter) -> Run:
    """Stream one /api/generate; return its Run. Raises BenchError."""
    import requests

    session = api.local_session()
    start = clock()
    first: float | None = None
    chunks = 0
    final: dict = {}
    try:
        with session.post(f"{url}/api/generate", stream=True, timeout=(5, timeout),
                           json={"model": model, "prompt": PROMPT, "stream": True}) as reply:
            if reply.status_code != 200:
                api.unload_after_failed_load(session, url, model)
                raise BenchError(f"generate failed: HTTP {reply.status_code} {reply.text.strip()[:200]}")
            for raw in reply.iter_lines():
                if not raw.strip():
                    continue
                event = json.loads(raw)
                if "error" in event:
                    hint = (f"; pull it first: hailo-ollama-service pull {model}"
                            if "not found" in str(event["error"]) else "")
                    raise BenchError(f"generate failed: {event['error']}{hint}")
                if event.get("response"):
                    chunks += 1
                    if first is None:
                        first = clock() - start
                if event.get("done"):
                    final = event
    except requests.RequestException as err:
        raise BenchError(f"{url} broke the connection: {type(err).__name__}") from None
    except ValueError:
        raise BenchError("the server sent something that is not NDJSON") from None
    wall = clock() - start
    first_token = first if first is not None else wall
    count, duration = final.get("eval_count"), final.get("eval_duration")
    if isinstance(count, int) and isinstance(duration, int) and duration > 0:
        return Run(first_token, count / (duration / 1e9), True)
    # Upstream (5.1.1, 5.3) sends eval_count but never eval_duration: its
    # tokens over the time from the first token to the last.
    generating = wall - first_token
    if isinstance(count, int) and count > 1 and generating > 0:
        return Run(first_token, (count - 1) / generating, True)
    return Run(first_token, chunks / wall if wall > 0 else 0.0, False)


def unload(url: str, model: str) -> None:
    """Unload ``model`` (a load request with keep_alive 0); raise BenchError if the server is gone."""
    import requests

    try:
        api.local_session().post(f"{url}/api/generate", json={"model": model, "keep_alive": 0, "stream": False},
                                 timeout=(5, 300))
    except requests.RequestException as err:
        raise BenchError(f"{url} does not answer: {type(err).__name__}") from None


def pick_model(url: str, wanted: str) -> str:
    """Return ``wanted``, else the first pulled model; raise BenchError if none."""
    import requests

    if wanted:
        return wanted
    session = api.local_session()
    try:
        models = session.get(f"{url}/api/tags", timeout=5).json().get("models", [])
    except (requests.RequestException, ValueError) as err:
        raise BenchError(f"{url} does not answer: {type(err).__name__}") from None
    if not models:
        raise BenchError("no model is pulled yet; try: hailo-ollama-service pull qwen2:1.5b")
    return str(models[0].get("name"))


def bench(values: dict[str, Value], model: str, runs: int, temperature: Callable[[], float | None],
          out: Callable[[str], None]) -> int:
    """Run the benchmark and print its figures; return the exit status."""
    url = api.base_url(values)
    chosen = pick_model(url, model or str(values["warmup.model"]))
    unload(url, chosen)  # so that the first run is a cold one
    before = temperature()
    results = []
    for i in range(runs):
        result = one_run(url, chosen)
        results.append(result)
        out(f"run {i + 1}/{runs}: first token {result.first_token:.2f} s, {result.tokens_per_second:.1f} tokens/s")
    after = temperature()
    source = "the server's eval_count" if all(r.from_server for r in results) else "wall clock"
    out(f"model:               {chosen}")
    out(f"runs:                {runs}")
    out(f"first token, cold:   {results[0].first_token:.2f} s (the model loaded first)")
    if len(results) > 1:
        out(f"first token, warm:   {statistics.median(r.first_token for r in results[1:]):.2f} s "
            f"(median of {len(results) - 1})")
    out(f"tokens/s, median:    {statistics.median(r.tokens_per_second for r in results):.1f} ({source})")
    shown = [f"{t:.1f} °C" if t is not None else "n/a" for t in (before, after)]
    out(f"SoC temperature:     {shown[0]} before, {shown[1]} after")
    return 0
