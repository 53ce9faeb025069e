"""Is the API up? The probe behind ``wait-ready``, kept lean (os, socket, time).

``wait-ready`` runs after every service start (ExecStartPost=) and in
scripts; it imports nothing but the C ``_socket`` module (``socket`` pulls
in enum and selectors, ``typing`` costs as much again): a raw HTTP/1.0
``GET /api/version``, and /proc to find where the unit's main process
listens.
"""

import _socket as socket
import os
import sys
import time

TYPE_CHECKING = False  # typing itself costs milliseconds; type checkers read this as True
if TYPE_CHECKING:
    from collections.abc import Callable

_LISTEN = "0A"
INTERVAL = 0.01


def client_host(listen_host: str) -> str:
    """Map a listen address to one a local client can connect to.

    0.0.0.0 -> 127.0.0.1 and :: -> ::1; anything else is returned as is.
    """
    if listen_host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if listen_host in ("::", "[::]"):
        return "::1"
    return listen_host


def url(host: str, port: int) -> str:
    """``http://host:port`` for a client address (IPv6 bracketed)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


VERSION_MAX = 64


def version_of(body: bytes) -> "str | None":
    """The string value of ``"version"`` in a small JSON object (its escapes decoded), or
    None, also for one longer than VERSION_MAX characters. Not escaped for a terminal:
    see report_wait."""
    text = body.decode("utf-8", "replace")
    at = text.find('"version"')
    if at < 0:
        return None
    rest = text[at + 9:].lstrip()
    if not rest.startswith(":"):
        return None
    rest = rest[1:].lstrip()
    if not rest.startswith('"'):
        return None
    end, escaped = 1, False
    while end < min(len(rest), 6 * VERSION_MAX + 2):  # an escape (\u001b) is 6 characters
        if escaped:
            escaped = False
        elif rest[end] == "\\":
            escaped = True
        elif rest[end] == '"':
            break
        end += 1
    else:
        return None
    found = rest[1:end]
    if "\\" in found:
        import json  # only for a version with escapes: the usual answer keeps wait-ready lean

        try:
            found = json.loads(f'"{found}"')
        except ValueError:
            return None
    return found if len(found) <= VERSION_MAX else None


def version(host: str, port: int, timeout: float = 2.0) -> "str | None":
    """``GET /api/version`` on host:port; the version string, or None if it does not answer.

    The whole exchange is bounded by ``timeout`` seconds; the answer is read
    up to 64 KiB.
    """
    deadline = time.monotonic() + timeout
    shown = f"[{host}]" if ":" in host else host
    request = f"GET /api/version HTTP/1.0\r\nHost: {shown}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    data = b""
    try:
        # bytes, not str: a str host is encoded with the idna codec, which imports re
        family, kind, proto, _name, address = socket.getaddrinfo(host.encode("ascii", "replace"), port, 0,
                                                                 socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(request)
            while len(data) < 65536:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                _head, sep, body = data.partition(b"\r\n\r\n")
                if sep and b"}" in body:
                    break
        finally:
            sock.close()
    except (OSError, IndexError):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        return None
    return version_of(body)


def tcp_listeners(net: str) -> list[tuple[str, int, str, int, int]]:
    """LISTEN sockets of ``net``/tcp, then tcp6: (hex address, port, inode,
    owner uid, family 4 or 6); malformed lines are skipped."""
    found = []
    for family, name in ((4, "tcp"), (6, "tcp6")):
        try:
            with open(os.path.join(net, name), encoding="ascii", errors="replace") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            try:
                address, port = fields[1].rsplit(":", 1)
                found.append((address, int(port, 16), fields[9], int(fields[7]), family))
            except ValueError:
                continue
    return found


def decode_address(hex_addr: str) -> str:
    """Turn /proc/net/tcp's little-endian hex address into text (v4-mapped v6 as v4)."""
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    if len(raw) != 16:
        raise ValueError(f"not an address: {hex_addr!r}")
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    if words[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, words[12:])
    return socket.inet_ntop(socket.AF_INET6, words)


def pid_listeners(pid: int, root: str = "/") -> list[tuple[str, int]]:
    """Return the (address, port) pairs on which process ``pid`` listens (TCP).

    Reads /proc/PID/net/tcp{,6} (the process's own network namespace) and
    its open file descriptors; [] when the process is gone or unreadable.
    """
    proc = os.path.join(root, "proc", str(pid))
    try:
        fds = os.listdir(os.path.join(proc, "fd"))
    except OSError:
        return []
    inodes = set()
    for fd in fds:
        try:
            inodes.add(os.readlink(os.path.join(proc, "fd", fd)))
        except OSError:  # closed meanwhile (e.g. the descriptor listdir used)
            continue
    found = tcp_listeners(os.path.join(proc, "net"))
    return [(decode_address(address), port) for address, port, inode, _uid, _family in found
            if f"socket:[{inode}]" in inodes]


def pid_alive(pid: int, root: str = "/") -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        with open(os.path.join(root, "proc", str(pid), "status"), encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("State:"):
                    return "zombie" not in line  # "State:\tZ (zombie)"
    except OSError:
        return False
    return True


def wait_ready(host: str, port: int, timeout: float, interval: float = INTERVAL,
               clock: "Callable[[], float]" = time.monotonic,
               sleep: "Callable[[float], None]" = time.sleep,
               pid: "int | None" = None) -> "str | None":
    """Poll ``/api/version`` until it answers or ``timeout`` seconds pass.

    Each probe is bounded by the time left, so a server that accepts and
    never answers cannot stretch the wait. With ``pid`` (the unit's
    $MAINPID), probe the address that process actually listens on, and give
    up at once when it has exited. Returns the version or None.
    """
    deadline = clock() + timeout
    while True:
        left = deadline - clock()
        if left <= 0:
            return None
        targets = [(host, port)]
        if pid is not None:
            if not pid_alive(pid):
                return None
            targets = [(client_host(addr), number) for addr, number in pid_listeners(pid)]
        for address, number in targets:
            found = version(address, number, timeout=max(0.05, min(2.0, left)))
            if found is not None:
                return found
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(interval, left))


def report_wait(host: str, port: int, timeout: float, pid: "int | None", quiet: bool) -> int:
    """Run ``wait-ready``: wait, print the outcome, return the exit status (0 or 1)."""
    found = wait_ready(host, port, timeout, pid=pid)
    if found is None:
        if pid is not None and not pid_alive(pid):
            why = f"the server (pid {pid}) exited before its API answered"
        else:
            why = f"no answer from {url(host, port)}/api/version within {timeout:g} s"
        print(f"hailo-ollama-service: {why}", file=sys.stderr, flush=True)
        return 1
    if not quiet:
        if not found.isprintable():  # the server's text: escaped, importing untrusted (re, json) only then
            from hailo_ollama_service.untrusted import shown
            found = shown(found)
        print(f"{url(host, port)} answers (version {found})", flush=True)
    return 0


def mainpid(environ: dict[str, str]) -> "int | None":
    """$MAINPID (set by systemd for ExecStartPost=) as a pid, or None."""
    value = environ.get("MAINPID", "")
    return int(value) if value.isdigit() and int(value) > 0 else None
