"""The model library the server pulls from: where it is, and whether it answers HTTPS.

The library is whatever ``library.host``/``library.port`` name (5.3 and
later take the host only, on port 443): Hailo's, or an HTTPS server on the
LAN. Like upstream, its TLS certificate is not verified: what protects a
pull is the sha256 in the local manifest, checked by the server after the
download. ``pull`` asks here before it asks the server; ``doctor`` reports it.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time

from hailo_ollama_service.client import httpclient
from hailo_ollama_service.config.schema import Value


def upstream_version() -> str | None:
    """The installed hailo-gen-ai-model-zoo version (dpkg), or None."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "hailo-gen-ai-model-zoo"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def library_address(values: dict[str, Value], version: str | None = None) -> tuple[str, int]:
    """(host, port) of the model library the server pulls from: ``library.port``
    reaches upstream 5.1 only; 5.3 and later take the host alone and use 443."""
    host, port = str(values["library.host"]), int(values["library.port"])
    numbers = tuple(int(x) for x in re.findall(r"\d+", (version or "").split("-")[0])[:2])
    return (host, 443) if numbers >= (5, 3) else (host, port)


def where(host: str, port: int) -> str:
    """host:port, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def library_reachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Does the model library answer HTTPS? None, or the problem in a few words.

    Resolves, connects and completes a TLS handshake, all within ``timeout``,
    WITHOUT verifying the certificate, as upstream does (a LAN library with a
    self-signed certificate for another name is fine: the server checks every
    blob against the manifest's sha256). A library that is not HTTPS fails
    upstream's download (5.1 aborts on a streaming pull), so it counts as
    unreachable. Sends no request.
    """
    deadline = time.monotonic() + timeout
    try:
        infos = httpclient.resolve(host, port, timeout)
    except OSError as err:
        return str(err)
    problem = f"cannot connect to {where(host, port)}"
    for family, kind, proto, _, address in infos:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"{problem}: no answer within {timeout:g} s"
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as err:
            problem = f"cannot connect to {where(host, port)}: {err.strerror or err}"
            continue
        try:
            sock.settimeout(left)
            sock.connect(address)
        except socket.timeout:
            sock.close()
            problem = f"cannot connect to {where(host, port)}: no answer within {timeout:g} s"
            continue
        except OSError as err:
            sock.close()
            problem = f"cannot connect to {where(host, port)}: {err.strerror or err}"
            continue
        return _tls_problem(sock, host, port, max(deadline - time.monotonic(), 0.1), timeout)
    return problem


def _tls_problem(sock: socket.socket, host: str, port: int, left: float, timeout: float) -> str | None:
    """Complete a TLS handshake on a connected socket, certificate unchecked; None or the problem."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as upstream: integrity comes from the manifest's sha256
    try:
        ip = True
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            ip = False
        sock.settimeout(left)
        with context.wrap_socket(sock, server_hostname=None if ip else host):
            return None
    except socket.timeout:
        return f"{where(host, port)} accepts connections but completes no TLS handshake within {timeout:g} s"
    except ssl.SSLError as err:
        return f"{where(host, port)} does not answer HTTPS ({err.reason or err}); upstream pulls over HTTPS only"
    except OSError as err:
        return f"{where(host, port)} closed the connection during the TLS handshake ({err.strerror or err})"
    finally:
        sock.close()
