"""The client side of bench/access_bench.py; runs inside the booted container.

    echo '{"targets": [...], "versions": 200, "chats": 20, ...}' | python3 access_probe.py latency
    echo '{"port": 11434, "key": "...", "count": 1000, "wait": 20, ...}' | python3 access_probe.py idle

Standard library only (it runs under the release's own python3). Talks to
127.0.0.1, so the figures are the front's and the server's, not a network's.
Reads its JSON spec on stdin (a key is never in an argument) and prints one
JSON object on stdout; measures, asserts nothing.

latency: each target is {"name", "port", "tls", "key"}. /api/version is
sent VERSIONS times over one kept-alive connection per target, the targets
taking turns, so a busy spell of the machine hits them alike. Then CHATS
streamed chats per target, again in turns: each on a connection that is
already open (and, with TLS, past its handshake), timing the request to its
first NDJSON line and every line after it.

idle: COUNT connections to PORT that send nothing, then one chat (with KEY,
not streamed); then it waits up to WAIT seconds and notes when each idle
connection was closed by the other side.
"""

import http.client
import json
import resource
import selectors
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def connection(target: dict, timeout: float = 120) -> http.client.HTTPConnection:
    """An open connection to TARGET (TLS handshake done when it has TLS)."""
    if target.get("tls"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            HOST, target["port"], timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(HOST, target["port"], timeout=timeout)
    conn.connect()
    return conn


def headers(target: dict) -> dict:
    h = {"Content-Type": "application/json"}
    if target.get("key"):
        h["Authorization"] = "Bearer " + target["key"]
    return h


def version_times(targets: list, n: int) -> dict:
    """Seconds of each GET /api/version, per target name, over kept-alive connections."""
    conns = {t["name"]: connection(t) for t in targets}
    times: dict = {t["name"]: [] for t in targets}
    try:
        for i in range(n + 5):  # the first five warm up the path
            for t in targets:
                conn = conns[t["name"]]
                t0 = time.perf_counter()
                conn.request("GET", "/api/version", headers=headers(t))
                reply = conn.getresponse()
                reply.read()
                spent = time.perf_counter() - t0
                if reply.status != 200:
                    raise RuntimeError(f"{t['name']}: /api/version answered {reply.status}")
                if reply.will_close:
                    raise RuntimeError(f"{t['name']}: /api/version closed the kept-alive connection")
                if i >= 5:
                    times[t["name"]].append(spent)
    finally:
        for conn in conns.values():
            conn.close()
    return times


def one_chat(target: dict, model: str) -> dict:
    """One streamed chat: seconds to the first line, and each line's arrival after the request."""
    conn = connection(target)
    body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    try:
        t0 = time.perf_counter()
        conn.request("POST", "/api/chat", body, headers(target))
        reply = conn.getresponse()
        if reply.status != 200:
            return {"status": reply.status, "body": reply.read(2000).decode(errors="replace")}
        arrivals = []
        for raw in reply:
            if raw.strip():
                arrivals.append(time.perf_counter() - t0)
        return {"status": 200, "arrivals": arrivals}
    finally:
        conn.close()


def latency(spec: dict) -> dict:
    targets = spec["targets"]
    out = {"version": version_times(targets, spec["versions"]), "chats": {t["name"]: [] for t in targets}}
    for i in range(spec["chats"] + 1 if spec["chats"] else 0):  # the first one per target warms up
        order = targets if i % 2 == 0 else list(reversed(targets))
        for t in order:
            result = one_chat(t, spec["model"])
            if result["status"] != 200:
                raise RuntimeError(f"{t['name']}: chat answered {result['status']}: {result['body'][:200]}")
            if i:
                out["chats"][t["name"]].append(result["arrivals"])
    return out


def idle(spec: dict) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, spec["count"] + 256)), hard))
    sel = selectors.DefaultSelector()
    opened = time.perf_counter()
    socks = []
    refused = 0
    for _ in range(spec["count"]):
        try:
            s = socket.create_connection((HOST, spec["port"]), timeout=10)
        except OSError:
            refused += 1
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    held = time.perf_counter() - opened
    target = {"name": "chat", "port": spec["port"], "key": spec.get("key")}
    body = json.dumps({"model": spec["model"], "stream": False, "messages": [{"role": "user", "content": "hi"}]})
    chat: dict = {}
    t0 = time.perf_counter()
    try:
        conn = connection(target, timeout=spec["chat_timeout"])
        conn.request("POST", "/api/chat", body, headers(target))
        reply = conn.getresponse()
        data = reply.read()
        chat = {"status": reply.status, "seconds": time.perf_counter() - t0,
                "done": reply.status == 200 and bool(json.loads(data).get("done"))}
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        chat = {"status": None, "seconds": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}"}
    closed = []
    deadline = opened + spec["wait"]
    while len(closed) < len(socks) and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=max(0.0, min(0.5, deadline - time.perf_counter()))):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                closed.append(time.perf_counter() - opened)
                sel.unregister(s)
    for s in socks:
        s.close()
    return {"opened": len(socks), "refused": refused, "open_seconds": held, "chat": chat,
            "closed": len(closed), "last_closed": max(closed) if closed else None,
            "first_closed": min(closed) if closed else None}


def main() -> int:
    command, spec = sys.argv[1], json.load(sys.stdin)
    result = latency(spec) if command == "latency" else idle(spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
