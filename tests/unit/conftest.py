"""Shared fixtures: a scratch root with the package's paths below it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for entry in (str(REPO), str(Path(__file__).resolve().parent)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from hailo_ollama_service.config.paths import Paths, make_paths  # noqa: E402


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """Paths below an empty scratch root (no conffile, no upstream files)."""
    return make_paths(tmp_path, environ={})


@pytest.fixture
def fake_api():
    """A running FakeApi, stopped after the test."""
    from unit_helpers import FakeApi
    api = FakeApi()
    yield api
    api.close()


@pytest.fixture
def standin(tmp_path):
    """The stand-in hailo-ollama on loopback without a device, stopped after the test."""
    from unit_helpers import Standin
    server = Standin(tmp_path / "standin")
    yield server
    server.stop()


@pytest.fixture
def standin_with_device(tmp_path):
    """The stand-in hailo-ollama on loopback with a usable fake device node."""
    from unit_helpers import Standin
    server = Standin(tmp_path / "standin", device=True)
    yield server
    server.stop()


@pytest.fixture
def hostile():
    """Start Hostile servers (tests/unit/hostile.py) with the given routes:
    ``hostile(routes)`` returns one; all are closed after the test."""
    from hostile import Hostile
    started = []

    def start(routes):
        started.append(Hostile(routes))
        return started[-1]
    yield start
    for server in started:
        server.close()


@pytest.fixture(autouse=True)
def _library_probes_stay_on_loopback(monkeypatch):
    """The model library probe (pull, doctor) may reach loopback only: a test
    whose settings name Hailo's library gets "cannot resolve" instead of a
    DNS query and a TLS handshake over the internet."""
    from hailo_ollama_service.client import pull

    real = pull.library_reachable

    def loopback_only(host, port, timeout=5.0):
        if host not in ("127.0.0.1", "::1", "localhost"):
            return f"cannot resolve {host}: the unit tests reach no library but on loopback"
        return real(host, port, timeout)
    monkeypatch.setattr(pull, "library_reachable", loopback_only)
