#!/usr/bin/python3
"""What the access front (HAProxy) costs, against the server without it (root).

    sudo /usr/bin/python3 bench/access_bench.py [--suite trixie] [--versions 300] [--chats 30]
                                                [--token-delay 0.02] [--idle 1000] [--wait 20]

Boots one container of the test root flavour ``access`` (haproxy and
ssl-cert from the archive), with the stand-in upstream and this package,
and measures, side by side in one run:
  - the median time of GET /api/version over a kept-alive connection, and
    of a streamed chat's first line on an open connection, straight to the
    server (127.0.0.1:11435) and through the front (:11434, a user key),
    plain and with TLS (the ssl-cert snakeoil certificate; after the
    handshake); the difference is what the front adds;
  - the gaps between streamed lines: the largest through the front and
    straight to the server, and how many lines came bunched with the one
    before (held back: a gap under half the stand-in's token delay);
  - the front's resident memory (master and worker): at rest, and its
    peak while it holds the idle connections below;
  - the load held: IDLE connections that send nothing, then a chat; with
    the front (access on) and with the server alone (access off): is the
    chat answered, and how many idle connections were closed within WAIT s.
The client (bench/access_probe.py) runs inside the container on loopback.
The debs come from $HOS_DEB and $HOS_STANDIN_DIR, else they are built.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "system"))

import fleet  # noqa: E402
import harness  # noqa: E402
import product  # noqa: E402

FRONT = "hailo-ollama-access.service"
INNER = 11435
MODEL = "qwen2:1.5b"
PROBE = "/root/access_probe.py"


def probe(c: harness.Container, command: str, spec: dict, timeout: float) -> dict:
    """Run bench/access_probe.py COMMAND with SPEC inside C; its JSON answer."""
    r = c.exec(["python3", PROBE, command], input=json.dumps(spec), check=False, timeout=timeout)
    if r.rc != 0:
        raise RuntimeError(f"access_probe {command} failed: {r.output[-2000:]}")
    return json.loads(r.stdout)


def settings(c: harness.Container, text: str) -> None:
    """Write the conffile, wait for its render, and for the server (and the front, when on)."""
    product.write_conffile(c, text)
    time.sleep(1)
    product.settle(c)
    if "enabled: true" in text:
        product.wait_for(lambda: product.is_active(c, FRONT) == "active", 60, what="the front active")
    else:
        product.wait_for(lambda: product.is_active(c, FRONT) == "inactive", 60, what="the front stopped")
    product.wait_for(lambda: product.answers(c, product.PORT, inside=True), 60, what="port 11434 answering")


def front_memory(c: harness.Container) -> dict[str, int]:
    """KiB of the front's processes (master and worker), summed: Rss and Pss (shared pages
    counted once) now, and the peak Rss (VmHWM)."""
    main = c.exec(["systemctl", "show", "-P", "MainPID", FRONT]).stdout.strip()
    pids = [main, *c.exec(["ps", "-o", "pid=", "--ppid", main], check=False).stdout.split()]
    kib = {"Rss": 0, "Pss": 0, "VmHWM": 0}
    for pid in pids:
        text = c.exec(["cat", f"/proc/{pid}/smaps_rollup", f"/proc/{pid}/status"], check=False).stdout
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name in kib:
                kib[name] += int(value.split()[0])
    return kib


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def first_lines(chats: list[list[float]]) -> float:
    return statistics.median(arrivals[0] for arrivals in chats)


def gaps(chats: list[list[float]]) -> list[float]:
    """The gaps between a chat's token lines (its last line, the totals, follows the last token at once)."""
    return [b - a for arrivals in chats for a, b in zip(arrivals[:-2], arrivals[1:-1])]


def latency_rows(run: dict, front: str, label: str, token_delay: float) -> list[tuple[str, str, str, str]]:
    """Rows (figure, straight, through the front, added) of one latency run."""
    v_direct, v_front = (statistics.median(run["version"][n]) for n in ("direct", front))
    n_version = len(run["version"]["direct"])
    rows = [(f"/api/version, kept alive ({label}, median of {n_version})", ms(v_direct), ms(v_front),
             ms(v_front - v_direct))]
    if not run["chats"]["direct"]:
        return rows
    c_direct, c_front = (first_lines(run["chats"][n]) for n in ("direct", front))
    g_direct, g_front = gaps(run["chats"]["direct"]), gaps(run["chats"][front])
    held = [sum(g < token_delay / 2 for g in x) for x in (g_direct, g_front)]
    n_chat = len(run["chats"]["direct"])
    return rows + [
        (f"first streamed line ({label}, median of {n_chat})", ms(c_direct), ms(c_front), ms(c_front - c_direct)),
        (f"largest gap between tokens ({label}; token every {token_delay * 1000:g} ms)", ms(max(g_direct)),
         ms(max(g_front)), ms(max(g_front) - max(g_direct))),
        (f"tokens held back ({label}, of {len(g_front)} gaps)", str(held[0]), str(held[1]), str(held[1] - held[0])),
    ]


def idle_row(name: str, result: dict, count: int, wait: float) -> tuple[str, str, str]:
    """A row (setup, the chat, the idle connections) of one load run."""
    chat = result["chat"]
    if not chat.get("status"):
        answered = f"chat failed after {chat['seconds']:.2f} s: {chat.get('error', '')[:40]}"
    else:
        answered = f"chat {chat['status']} in {chat['seconds']:.2f} s"
        if not chat["done"]:
            answered += " (not a generation)"
    closed = f"{result['closed']} of {result['opened']} idle closed in {wait:g} s"
    if result["closed"]:
        closed += f" (after {result['first_closed']:.1f}-{result['last_closed']:.1f} s)"
    if result["refused"]:
        closed += f", {result['refused']} of {count} refused"
    return (name, answered, closed)


def sampled(c: harness.Container, command: str, spec: dict, timeout: float) -> tuple[dict, dict[str, int]]:
    """Run the probe while sampling the front's memory every half second: (its answer, the largest of each figure)."""
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(answer=probe(c, command, spec, timeout)), daemon=True)
    worker.start()
    peak = front_memory(c)
    while worker.is_alive():
        peak = {k: max(v, front_memory(c)[k]) for k, v in peak.items()}
        worker.join(0.5)
    if "answer" not in done:
        raise RuntimeError(f"access_probe {command} failed (see above)")
    return done["answer"], peak


def memory_row(name: str, kib: dict[str, int]) -> tuple[str, str, str, str]:
    return (name, "", f"{mib(kib['Rss'])} (Pss {mib(kib['Pss'])})", "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="trixie", choices=harness.SUPPORTED_SUITES)
    ap.add_argument("--upstream", choices=("standin", "real"), default="standin",
                    help="the server: the stand-in, or Hailo's real 5.1.1 for x86-64 (no device: "
                         "chats answer 500, so only /api/version, memory and the load are measured)")
    ap.add_argument("--versions", type=int, default=300, help="GET /api/version per target (default 300)")
    ap.add_argument("--chats", type=int, default=30, help="streamed chats per target (default 30)")
    ap.add_argument("--token-delay", type=float, default=0.02,
                    help="the stand-in's seconds per token (8 tokens a chat; default 0.02)")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections of the load (default 1000)")
    ap.add_argument("--wait", type=float, default=20, help="seconds to watch them be closed (default 20)")
    args = ap.parse_args()
    harness.start_bench(args.suite)
    debs = product.Debs(Path(tempfile.mkdtemp(prefix="hos-access-bench-")))
    c = harness.Container("access-bench", root=harness.ensure_root(flavour="access"))
    rows: list[tuple[str, str, str, str]] = []
    loads: list[tuple[str, str, str]] = []
    chats = args.chats if args.upstream == "standin" else 0
    try:
        c.boot()
        if args.upstream == "real":
            product.apt_install(c, debs.real_server, check=True)
        else:
            product.install_standin(c, debs, "5.1.1")
        c.add_device("/dev/hailo0")
        product.apt_install(c, debs.hos, check=True)
        product.wait_for(lambda: product.answers(c, product.PORT, inside=True), 60, what="the server answering")
        if args.upstream == "standin":
            product.ensure_pulled(c, MODEL)
            fleet.standin_knob(c, "token-delay", args.token_delay)
        c.write_file(PROBE, (Path(__file__).parent / "access_probe.py").read_bytes())
        haproxy = c.exec(["dpkg-query", "-W", "-f", "${Version}", "haproxy"]).stdout.strip()
        timeout = 600 + chats * 10
        load = {"count": args.idle, "wait": args.wait, "model": MODEL, "chat_timeout": 60}

        bare = probe(c, "idle", {**load, "port": product.PORT}, timeout)

        settings(c, "access:\n  enabled: true\n")
        key = c.exec(["hailo-ollama-service", "keys", "add", "bench"]).stdout.strip()
        time.sleep(1)
        direct = {"name": "direct", "port": INNER}
        spec = {"versions": args.versions, "chats": chats, "model": MODEL}
        plain = probe(c, "latency", {**spec, "targets": [direct, {"name": "front", "port": product.PORT,
                                                                   "key": key}]}, timeout)
        rest = front_memory(c)
        fronted, peak = sampled(c, "idle", {**load, "port": product.PORT, "key": key}, timeout)

        settings(c, "access:\n  enabled: true\n  tls: snakeoil\n")
        tls = probe(c, "latency", {**spec, "targets": [direct, {"name": "front-tls", "port": product.PORT,
                                                                 "key": key, "tls": True}]}, timeout)
        tls_rest = front_memory(c)

        rows += latency_rows(plain, "front", "plain", args.token_delay)
        rows += latency_rows(tls, "front-tls", "TLS", args.token_delay)
        rows.append(memory_row("front's memory, at rest (plain)", rest))
        rows.append(memory_row("front's memory, at rest (TLS)", tls_rest))
        rows.append(memory_row(f"front's memory, peak with {args.idle} idle connections", peak))
        loads.append(idle_row("the server alone (access off)", bare, args.idle, args.wait))
        loads.append(idle_row("through the front (access on)", fronted, args.idle, args.wait))
    finally:
        c.destroy()

    what = f"the stand-in at one token every {args.token_delay * 1000:g} ms" if chats else "Hailo's real 5.1.1"
    print(f"\n{args.suite}, HAProxy {haproxy}, {what}\n")
    table(("figure", "straight to the server", "through the front", "added by the front"), rows)
    print(f"\nload held: {args.idle} connections that send nothing, then a chat\n")
    table(("setup", "the chat", "the idle connections"), loads)
    return 0


def table(header: tuple[str, ...], rows: list) -> None:
    """Print ROWS under HEADER in aligned columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
