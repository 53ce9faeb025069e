#!/usr/bin/python3
"""Figures of hailo-ollama-service in booted containers of each release (root).

    sudo /usr/bin/python3 bench/system_bench.py [--repeat N] [--suites "trixie bookworm"]
                                                [--upstream standin|real]

--upstream real measures with Hailo's real 5.1.1 server built for x86-64
(tests/realserver/, from ../shared/peer) instead of the Python stand-in.

Prints a small table, one column per Debian release:
  - wall time of `apt install ./hailo-ollama-service_*.deb` with its
    dependencies (and the stand-in upstream) already present, no device;
  - `systemctl start hailo-ollama.service` until the API answers, against
    the same unit without the package's start steps (upstream's server as
    ExecStart=, no render; the sandbox and wait-ready kept) and against starting the server by hand
    with the same user and environment; the runs are interleaved;
  - a conffile edit until the server answers on the new port;
  - the number of processes of the package left running beside the server
    (target 0);
  - the exposure score of `systemd-analyze security hailo-ollama.service`
    (0 = fully sandboxed, 10 = not at all; the release's own systemd).
The debs come from $HOS_DEB and $HOS_STANDIN_DIR, else they are built
(tools/build-deb, tests/standin/build-debs).  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "system"))

import harness  # noqa: E402
import product  # noqa: E402

TIMEOUT = 60
# What the package's start steps (root's render, serve's model step) may add to the server's start
# under the same sandbox;
# see docs/figures.md for why the goal is not against the bare start.
STEPS_GOAL = 1.5


def until_answering(c, port, timeout=TIMEOUT):
    """Seconds until GET /api/version answers from the host (polled every 10 ms)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if product.answers(c, port):
            return time.monotonic() - t0
        time.sleep(0.01)
    raise RuntimeError(f"not answering on {port} within {timeout}s")


def until_silent(c, port, timeout=TIMEOUT):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not product.answers(c, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"still answering on {port}")


def unit_start(c):
    c.systemctl("stop", product.UNIT, check=True)
    until_silent(c, product.PORT)
    t0 = time.monotonic()
    c.systemctl("start", product.UNIT, check=True, timeout=TIMEOUT)
    until_answering(c, product.PORT)
    return time.monotonic() - t0


BARE_DROPIN = "/etc/systemd/system/hailo-ollama.service.d/zz-bench-sandbox-only.conf"


def sandbox_only_start(c):
    """One start of the same unit, sandbox and all, without the package's
    start steps: upstream's server as ExecStart= (no serve), no
    ExecStartPre= (no render). ExecStartPost= wait-ready stays, so that
    "started" still means "the API answers", as for the unit itself."""
    c.write_file(BARE_DROPIN, "[Service]\nExecStartPre=\nExecStart=\nExecStart=/usr/bin/hailo-ollama\n")
    c.systemctl("daemon-reload", check=True)
    try:
        return unit_start(c)
    finally:
        c.exec(["rm", "-f", BARE_DROPIN])
        c.systemctl("daemon-reload", check=True)


def hand_start(c, env_words):
    """The server started by hand: same user, same environment, no unit."""
    c.systemctl("stop", product.UNIT, check=True)
    until_silent(c, product.PORT)
    script = ("cd /var/lib/hailo-ollama && exec setpriv --reuid=hailo-ollama --regid=hailo-ollama "
              "--init-groups env -i " + " ".join(shlex.quote(w) for w in env_words)
              + " /usr/bin/hailo-ollama")
    t0 = time.monotonic()
    proc = subprocess.Popen(["nsenter", "-t", str(c.init_pid), "-a", "--", "sh", "-c", script],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        until_answering(c, product.PORT)
        return time.monotonic() - t0
    finally:
        c.exec(["pkill", "-TERM", "-u", "hailo-ollama", "-x", "hailo-ollama"], check=False)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        until_silent(c, product.PORT)


def edit_to_served(c, shipped, port):
    t0 = time.monotonic()
    product.write_conffile(c, product.port_config(port, shipped), how="rename")
    until_answering(c, port)
    return time.monotonic() - t0


def package_processes(c):
    """Processes of the package other than the server's main process."""
    main = product.main_pid(c)
    r = c.exec(["ps", "-eo", "pid=,cgroup=,args="])
    out = []
    for line in r.stdout.splitlines():
        pid, cgroup, args = (line.split(None, 2) + ["", ""])[:3]
        if not pid.isdigit() or int(pid) == main:
            continue
        if "hailo-ollama" in cgroup or "hailo_ollama_service" in args or "hailo-ollama-service" in args:
            if args.startswith("ps "):
                continue
            out.append(line.strip())
    return out


def exposure(c) -> str:
    """The overall exposure level systemd-analyze gives the server's unit."""
    r = c.exec(["systemd-analyze", "security", "--no-pager", product.UNIT], check=False)
    for line in r.stdout.splitlines():
        if "Overall exposure level" in line:
            return line.split("level for")[-1].split(":", 1)[-1].strip().split()[0]
    return "?"


def measure(suite: str, debs: product.Debs, repeat: int, upstream: str = "standin"
            ) -> list[tuple[str, str, str]]:
    """The figures of one release with UPSTREAM (standin or real): (name, value, note) rows."""
    harness.set_suite(suite)
    rows = []
    with harness.Container("bench") as c:
        c.boot()
        if upstream == "real":
            product.apt_install(c, debs.real_server, check=True)
        else:
            product.install_standin(c, debs)
        # make the first install's dependencies and caches warm, then measure a fresh install
        r = product.apt_install(c, debs.hos)
        if r.rc != 0:
            sys.exit(r.output)
        product.apt(c, "purge", product.PACKAGE, check=True)
        r = product.apt_install(c, debs.hos)
        if r.rc != 0:
            sys.exit(r.output)
        rows.append(("apt install (deps present, no device)", f"{r.duration:.2f} s", ""))
        until_answering(c, product.PORT)

        env = c.unit_property(product.UNIT, "Environment").split()
        # interleaved, so a busy spell of the machine hits all three alike
        units, sandboxed, hands = [], [], []
        for _ in range(repeat):
            units.append(unit_start(c))
            sandboxed.append(sandbox_only_start(c))
            hands.append(hand_start(c, env))
        c.systemctl("start", product.UNIT, check=True, timeout=TIMEOUT)
        until_answering(c, product.PORT)
        u, s, h = statistics.median(units), statistics.median(sandboxed), statistics.median(hands)
        rows.append(("systemctl start -> API answering", f"{u:.3f} s", f"median of {repeat}"))
        rows.append(("same unit without render/serve (sandbox, wait)", f"{s:.3f} s", f"median of {repeat}"))
        rows.append((f"{upstream} server started by hand -> API answering", f"{h:.3f} s",
                     f"median of {repeat}"))
        rows.append(("unit overhead: unit / by hand", f"{u / h:.2f} x", "systemd's sandbox included"))
        rows.append(("package's start steps: unit / that", f"{u / s:.2f} x", f"goal {STEPS_GOAL:g} x"))

        shipped = c.read_file(product.CONFFILE)
        edits = [edit_to_served(c, shipped, 11600 + i) for i in range(repeat)]
        rows.append(("conffile edit -> served on the new port", f"{statistics.median(edits):.3f} s",
                     f"median of {repeat}, max {max(edits):.3f} s"))
        product.write_conffile(c, shipped, how="rename")
        until_answering(c, product.PORT)
        time.sleep(2)  # let the path unit's oneshot finish
        extra = package_processes(c)
        rows.append(("package processes beside the server", str(len(extra)), "; ".join(extra)[:60]))
        rows.append(("systemd-analyze security exposure", exposure(c), ""))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--suites", default="trixie bookworm", help="Debian releases, in columns")
    ap.add_argument("--upstream", choices=("standin", "real"), default="standin",
                    help="the server: the Python stand-in, or Hailo's real 5.1.1 built for x86-64")
    args = ap.parse_args()
    harness.start_bench(None)  # measure() takes each suite in turn
    debs = product.Debs(Path(tempfile.mkdtemp(prefix="hos-bench-")))
    suites = args.suites.split()
    results = {suite: measure(suite, debs, args.repeat, args.upstream) for suite in suites}
    names = [name for name, _, _ in results[suites[0]]]
    width = max(len(n) for n in names)
    print(f"\n{'figure':<{width}}  " + "  ".join(f"{s:>10}" for s in suites) + "  note")
    print(f"{'-' * width}  " + "  ".join("-" * 10 for _ in suites) + "  " + "-" * 20)
    for i, name in enumerate(names):
        values = "  ".join(f"{results[s][i][1]:>10}" for s in suites)
        print(f"{name:<{width}}  {values}  {results[suites[0]][i][2]}")


if __name__ == "__main__":
    main()
