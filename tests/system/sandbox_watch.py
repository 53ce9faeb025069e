"""Watch every process of the service user inside a booted container.

A process of `hailo-ollama` outside the server's sandbox can be taken over
by the server through /proc/PID/mem (same uid; no ptrace call, so the
seccomp filter does not stop it). `Watch` polls /proc inside the container
every few milliseconds, as root, from a transient unit of its own, and
records each process of that user: its command, its seccomp filter count
and its cgroup. `violations` then names every observation of a process that
was not sandboxed as tightly as the server: not in one of the package's
sandboxed units, or with no more seccomp filters than the container's init
(nspawn's own filter, which every process inside inherits).

Observations of systemd's own child before it executes the unit's command
(comm in parentheses, e.g. "(ce-serve)") are left out: that process runs
systemd's code and installs the sandbox just before exec.
"""

from __future__ import annotations

import json
import time

import product

# The package's units that run as the service user, each with a
# SystemCallFilter= (hailo-ollama.service is the tightest of them).
SANDBOXED_UNITS = ("hailo-ollama.service", "hailo-ollama-warmup.service", "hailo-ollama-keepwarm.service",
                   "hailo-ollama-metrics.service")
OUT = "/run/hos-test-watch.json"
WATCH_UNIT = "hos-test-watch.service"

POLLER = r"""
import json, os, sys, time
uid, out = sys.argv[1], sys.argv[2]
stop = out + ".stop"
seen, passes = {}, 0

def field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()
    return []

while not os.path.exists(stop):
    passes += 1
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                status = f.read()
            if uid not in field(status, "Uid"):
                continue
            with open("/proc/%s/cgroup" % pid) as f:
                # " (deleted)": the unit's cgroup went away as the process exits
                cgroup = f.read().strip().splitlines()[-1].rsplit("/", 1)[-1].replace(" (deleted)", "")
            with open("/proc/%s/stat" % pid) as f:
                start = f.read().rsplit(")", 1)[1].split()[19]
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")[:160]
        except (OSError, ValueError, IndexError):
            continue
        row = {"pid": int(pid), "start": start, "comm": (field(status, "Name") or [""])[0],
               "uid": field(status, "Uid"), "seccomp": (field(status, "Seccomp") or ["?"])[0],
               "filters": int((field(status, "Seccomp_filters") or ["-1"])[0]),
               "nnp": (field(status, "NoNewPrivs") or ["?"])[0], "cgroup": cgroup, "cmd": cmd}
        seen[json.dumps(row, sort_keys=True)] = row
    time.sleep(0.002)
with open(out + ".tmp", "w") as f:
    json.dump({"passes": passes, "seen": list(seen.values())}, f)
os.rename(out + ".tmp", out)
"""


class Watch:
    """A poller of the service user's processes in container ``c``, as a
    context manager; ``result`` holds what it saw once it has stopped."""

    def __init__(self, c):
        self.c = c
        self.result: dict = {}

    def __enter__(self) -> Watch:
        c = self.c
        uid = c.exec(["id", "-u", product.USER]).stdout.strip()
        c.exec(["rm", "-f", OUT, OUT + ".stop", OUT + ".tmp"])
        c.write_file("/run/hos-test-watch.py", POLLER)
        c.exec(["systemd-run", f"--unit={WATCH_UNIT}", "--collect", "--quiet", "-p", "RuntimeMaxSec=1200",
                "/usr/bin/python3", "/run/hos-test-watch.py", uid, OUT])
        product.wait_for(lambda: c.exec(["systemctl", "is-active", WATCH_UNIT], check=False).stdout.strip()
                         == "active", 10, what="the process watch to run")
        time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        c = self.c
        c.exec(["touch", OUT + ".stop"])
        done = product.wait_for(lambda: c.exists(OUT), 30, what="the process watch to stop")
        c.systemctl("stop", WATCH_UNIT)
        if done:
            self.result = json.loads(c.read_file(OUT))

    @property
    def seen(self) -> list[dict]:
        return self.result.get("seen", [])

    def baseline_filters(self) -> int:
        """The seccomp filters the container's init has (nspawn's own)."""
        status = self.c.read_file("/proc/1/status")
        for line in status.splitlines():
            if line.startswith("Seccomp_filters:"):
                return int(line.split()[1])
        raise AssertionError("no Seccomp_filters in /proc/1/status: kernel too old for this test")

    def violations(self) -> list[dict]:
        """Every observation of a process of the service user that ran
        outside the package's sandboxed units or without their seccomp filter."""
        base = self.baseline_filters()
        bad = []
        for row in self.seen:
            if row["comm"].startswith("("):  # systemd's child before exec
                continue
            if row["cgroup"] not in SANDBOXED_UNITS or row["seccomp"] != "2" or row["filters"] <= base \
                    or row["nnp"] != "1":
                bad.append(row)
        return bad
