#!/usr/bin/python3
"""Benchmark (not a test): how long `hailo-ollama-service render` takes.

Prints the median wall time of rendering an unchanged configuration into a
scratch root, of `python3 -c pass`, and their ratio. Run: make bench
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "21"))


def median_seconds(argv: list[str], env: dict[str, str]) -> float:
    """Run ``argv`` RUNS times; return the median wall time in seconds."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as root:
        manifests = Path(root, "usr/share/hailo-ollama/models/manifests")
        for model in ("qwen2/1.5b", "llama3.2/3b", "qwen2.5-instruct/1.5b", "qwen2.5-coder/1.5b",
                      "deepseek_r1_distill_qwen/1.5b"):
            (manifests / model).mkdir(parents=True)
            (manifests / model / "manifest.json").write_text('{"hef_h10h": "sha256_00"}\n')
        render = [sys.executable, "-m", "hailo_ollama_service", "--root", root, "render"]
        subprocess.run(render, check=True, env=env, stdout=subprocess.DEVNULL)  # first, changing render
        unchanged = median_seconds(render, env)
        baseline = median_seconds([sys.executable, "-c", "pass"], env)
    print(f"python:                       {sys.executable} {sys.version.split()[0]}")
    print(f"runs:                         {RUNS}")
    print(f"render (unchanged), median:   {unchanged * 1000:7.1f} ms")
    print(f"python3 -c pass, median:      {baseline * 1000:7.1f} ms")
    print(f"ratio:                        {unchanged / baseline:7.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
