"""Tests of client/library.py: the library's address, and the probe of whether it answers HTTPS.

conftest.py keeps the probe on loopback and starts the stand-in libraries (``lan_library``).
"""

from __future__ import annotations

import socket
import time

from hailo_ollama_service.client import library
from hailo_ollama_service.config.schema import DEFAULTS


def test_the_library_probe_names_an_unresolvable_host():
    problem = library.library_reachable("no-such-host.invalid", 443, timeout=2)
    assert problem and "no-such-host.invalid" in problem


def test_the_library_port_is_library_port_for_5_1_and_443_from_5_3_on():
    values = dict(DEFAULTS, **{"library.host": "lib.lan", "library.port": 8443})
    assert library.library_address(values, None) == ("lib.lan", 8443)
    assert library.library_address(values, "5.1.1") == ("lib.lan", 8443)
    assert library.library_address(values, "5.3.0-1") == ("lib.lan", 443)
    assert library.library_address(values, "5.4.0") == ("lib.lan", 443)


def test_the_probe_accepts_a_self_signed_certificate_for_another_name_as_upstream_does(lan_library):
    served = lan_library()
    assert library.library_reachable("localhost", served.port, timeout=5) is None
    assert library.library_reachable("127.0.0.1", served.port, timeout=5) is None


def test_the_probe_refuses_a_library_that_is_not_https(lan_library):
    served = lan_library("--plain")
    problem = library.library_reachable("127.0.0.1", served.port, timeout=5)
    assert problem and "does not answer HTTPS" in problem and f"127.0.0.1:{served.port}" in problem


def test_the_probe_is_bounded_when_a_port_accepts_but_never_speaks_tls():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        problem = library.library_reachable("127.0.0.1", silent.getsockname()[1], timeout=1)
    assert time.monotonic() - start < 3
    assert problem and "completes no TLS handshake within 1 s" in problem
