#!/usr/bin/python3
"""Throughput of a fleet of Pis behind the example HAProxy balancer (root).

    sudo /usr/bin/python3 bench/balancer_bench.py [--chats 6] [--repeat 3] [--token-delay 0.2] [--suite trixie]

Boots three Pi containers (the stand-in upstream with a usable device node,
and our package) and a balancer container (the root flavour with Debian's
haproxy), as tests/system/test_98_balancer.py does. The balancer is set up
by the Ansible example's play (examples/ansible/balancer.yml, over SSH) from
an inventory of 1, 2 and then 3 Pis. For each, and for one Pi alone without
the balancer, it sends N streaming chats at once and measures the wall time
until the last has answered: chats per second, and the ratio to one Pi
alone (the scaling). The stand-in's token delay (a test knob) makes a chat
last long enough (8 tokens, 1.6 s at 0.2 s a token) that the queueing, not
the HTTP round trips, is what is measured. Prints a table; asserts nothing.

The debs come from $HOS_DEB and $HOS_STANDIN_DIR, else they are built.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "system"))

import fleet  # noqa: E402
import harness  # noqa: E402
import product  # noqa: E402


def round_of(host: str, port: int, n: int) -> float:
    """Wall time of N concurrent chats; raises when one did not answer in full."""
    t0 = time.monotonic()
    chats = fleet.concurrent_chats(host, n, port=port, timeout=300)
    wall = time.monotonic() - t0
    bad = [c for c in chats if not c.ok]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} chats failed: "
                           + "; ".join(f"{c.status} {c.error} {c.body[:100]!r}" for c in bad))
    return wall


def measure(host: str, port: int, n: int, repeat: int, warm: int) -> list[float]:
    round_of(host, port, warm)  # every Pi has the model loaded before the clock runs
    return [round_of(host, port, n) for _ in range(repeat)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chats", type=int, default=6, help="concurrent chats per round (default 6)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per setup; the median is shown (default 3)")
    ap.add_argument("--token-delay", type=float, default=0.2,
                    help="the stand-in's seconds per token (8 tokens a chat; default 0.2)")
    ap.add_argument("--suite", default="trixie", choices=harness.SUPPORTED_SUITES)
    args = ap.parse_args()
    harness.start_bench(args.suite)
    work = Path(tempfile.mkdtemp(prefix="hos-balancer-bench-"))
    debs = product.Debs(work / "debs")
    f = fleet.boot_fleet(3, work, name="bench")
    try:
        for pi in f.pis:
            fleet.prepare_pi(pi, args.token_delay)
            product.apt_install(pi, debs.standin("5.1.1"), check=True)
            product.apt_install(pi, debs.hos, check=True)
            if not product.wait_answering(pi, timeout=60):
                raise RuntimeError(f"{pi.name} does not answer")
            product.ensure_pulled(pi, fleet.MODEL)
        version = f.balancer.exec(["dpkg-query", "-W", "-f", "${Version}", "haproxy"]).stdout.strip()

        single = fleet.chat(f.pis[0].ip, 11434)  # loads the model on the first Pi
        single = fleet.chat(f.pis[0].ip, 11434)
        if not single.ok:
            raise RuntimeError(f"a chat failed: {single}")
        rows = [("one Pi, no balancer", measure(f.pis[0].ip, 11434, args.chats, args.repeat, 1))]
        for k in (1, 2, 3):
            done = fleet.run_playbook(f.inventory(f.pis[:k]), fleet.BALANCER_PLAY)
            if done.returncode != 0:
                raise RuntimeError("the balancer play failed:\n" + done.stdout[-4000:] + done.stderr[-2000:])
            for pi in f.pis[:k]:
                fleet.wait_server_status(f.balancer, pi.ip, "UP", timeout=30)
            rows.append((f"balancer, {k} Pi{'s' if k > 1 else ''}",
                         measure(f.balancer.ip, fleet.BALANCER_PORT, args.chats, args.repeat, k)))
    finally:
        f.destroy()

    base = args.chats / statistics.median(rows[0][1])
    print(f"\n{args.chats} concurrent streaming chats through HAProxy {version} (Debian {args.suite}), "
          f"stand-in {8 * args.token_delay:.1f} s a chat (one alone: {single.t_last:.2f} s), "
          f"median of {args.repeat} rounds\n")
    print("| setup | wall time | chats/s | scaling (to one Pi alone) |")
    print("|---|---|---|---|")
    for name, walls in rows:
        wall = statistics.median(walls)
        rate = args.chats / wall
        print(f"| {name} | {wall:.2f} s | {rate:.2f} | {rate / base:.2f} × |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
