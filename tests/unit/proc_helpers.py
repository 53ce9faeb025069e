"""A fake /proc (and /etc/passwd) below a test root: listening sockets and
the processes that hold them, for checks.py, listeners.py and doctor's port check."""

from __future__ import annotations

import os
from pathlib import Path

from unit_helpers import write

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
SERVICE_UID = "996"
PASSWD = f"root:x:0:0:root:/root:/bin/bash\nhailo-ollama:x:{SERVICE_UID}:996::/var/lib/hailo-ollama:/usr/sbin/nologin\n"
V4_ANY, V4_LOOPBACK = "00000000", "0100007F"
V6_LOOPBACK = "00000000000000000000000001000000"
UNIT_CGROUP = "0::/system.slice/hailo-ollama.service\n"
SESSION_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u202e"


def listen(root: Path, port: int, pid: int, uid: int | str, cgroup: str, comm: str = "hailo-ollama",
           address: str = V4_ANY, inode: str | None = None) -> None:
    """Add a socket listening on ``address``:``port`` (tcp, or tcp6 for a
    32-digit address) owned by ``uid``, held by a fake process ``pid`` named
    ``comm`` in ``cgroup``."""
    inode = inode or str(5000 + int(pid))
    table = root / "proc/net" / ("tcp6" if len(address) == 32 else "tcp")
    for path in (root / "proc/net/tcp", root / "proc/net/tcp6"):
        if not path.exists():
            write(path, HEADER)
    with open(table, "a") as handle:
        handle.write(f"   0: {address}:{port:04X} {'0' * len(address)}:0000 0A 00000000:00000000 00:00000000 "
                     f"00000000 {uid:>5}        0 {inode} 1 0000000000000000 100 0 0 10 0\n")
    proc = root / "proc" / str(pid)
    (proc / "fd").mkdir(parents=True)
    os.symlink(f"socket:[{inode}]", proc / "fd/3")
    write(proc / "comm", comm + "\n")
    write(proc / "cgroup", cgroup)
    write(proc / "status", f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
