#!/usr/bin/python3
"""Benchmark (not a test): what the commands run at every start cost.

Prints the median wall time, in one run, of
- `hailo-ollama-service render` with nothing changed (the fast path),
- `hailo-ollama-service wait-ready` against a live server on loopback,
- `python3 -c pass`,
and the ratios of the first two to the last, with the goals (1.5 x and 2 x).
The command is run as installed: bin/hailo-ollama-service, its package
from this tree. Run: make bench
"""

from __future__ import annotations

import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "21"))
GOALS = {"render": 1.5, "wait-ready": 2.0}


def median_seconds(argv: list[str], env: dict[str, str]) -> float:
    """Run ``argv`` RUNS times; return the median wall time in seconds."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Version(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b'{"version":"0.5.1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("MAINPID", None)
    # As installed: the byte code is there (py3compile at install), not compiled at every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "hailo_ollama_service")], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as root:
        manifests = Path(root, "usr/share/hailo-ollama/models/manifests")
        for model in ("qwen2/1.5b", "llama3.2/3b", "qwen2.5-instruct/1.5b", "qwen2.5-coder/1.5b",
                      "deepseek_r1_distill_qwen/1.5b"):
            (manifests / model).mkdir(parents=True)
            (manifests / model / "manifest.json").write_text('{"hef_h10h": "sha256_00"}\n')
        conffile = Path(root, "etc/hailo/hailo-ollama.yaml")
        conffile.parent.mkdir(parents=True)
        conffile.write_text(f"server:\n  host: 127.0.0.1\n  port: {server.server_address[1]}\n")
        command = [sys.executable, "-s", str(REPO / "bin/hailo-ollama-service"), "--root", root]
        subprocess.run(command + ["render"], check=True, env=env, stdout=subprocess.DEVNULL)  # changes
        time.sleep(2.1)  # older than the file system clock's resolution: the next render stamps them
        subprocess.run(command + ["render"], check=True, env=env, stdout=subprocess.DEVNULL)
        out = subprocess.run(command + ["render"], check=True, env=env, capture_output=True, text=True).stdout
        assert out == "unchanged\n", out
        figures = {"render": median_seconds(command + ["render"], env),
                   "wait-ready": median_seconds(command + ["wait-ready", "--timeout", "10", "--quiet"], env)}
        baseline = median_seconds([sys.executable, "-s", "-c", "pass"], env)
    server.shutdown()
    print(f"python:                        {sys.executable} {sys.version.split()[0]}")
    print(f"runs:                          {RUNS}")
    print(f"python3 -c pass, median:       {baseline * 1000:7.1f} ms")
    for name, seconds in figures.items():
        ratio = seconds / baseline
        verdict = "meets" if ratio <= GOALS[name] else "MISSES"
        print(f"{name + ' (unchanged)' if name == 'render' else name + ' (live server)':<24} median: "
              f"{seconds * 1000:7.1f} ms  ratio {ratio:4.2f} x  ({verdict} the goal of {GOALS[name]} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
