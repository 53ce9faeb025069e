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
    """The model library probe (client/library.py, as pull and doctor call it)
    may reach loopback only: a test whose settings name Hailo's library gets
    "cannot resolve" instead of a DNS query and a TLS handshake over the internet."""
    from hailo_ollama_service.client import library, pull

    real = library.library_reachable

    def loopback_only(host, port, timeout=5.0):
        if host not in ("127.0.0.1", "::1", "localhost"):
            return f"cannot resolve {host}: the unit tests reach no library but on loopback"
        return real(host, port, timeout)
    monkeypatch.setattr(library, "library_reachable", loopback_only)  # doctor's check_library
    monkeypatch.setattr(pull, "library_reachable", loopback_only)  # pull's own name for it


@pytest.fixture
def lan_library():
    """Start stand-in model libraries on loopback (HTTPS, self-signed for another name); stopped afterwards."""
    import shutil

    from unit_helpers import Library
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (the stand-in library makes its certificate with it)")
    started = []

    def start(*args):
        started.append(Library(*args))
        return started[-1]
    yield start
    for one in started:
        one.stop()


# ---------------------------------------------------------------- stamps (stamp.py, entry.py's fast paths)
@pytest.fixture
def later(monkeypatch):
    """Pretend the stamped files are old enough to be stamped (see stamp.RACY_NS)."""
    import time

    from hailo_ollama_service import stamp
    real = time.time_ns
    monkeypatch.setattr(stamp.time, "time_ns", lambda: real() + 10 * stamp.RACY_NS)


@pytest.fixture
def stamped(paths, later):
    """``paths`` after a render with --try-restart whose stamp answers the fast path."""
    import time

    from unit_helpers import TICK, apply_quietly, render_unchanged, write
    write(paths.conffile, "server:\n  port: 11500\n")
    write(paths.debconf_layer, "server:\n  host: 127.0.0.1\n")
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    apply_quietly(paths, try_restart=True)
    assert render_unchanged(paths) and render_unchanged(paths, try_restart=True)
    time.sleep(TICK)
    return paths


@pytest.fixture
def synced(paths, later, monkeypatch):
    """``paths`` after the service user's model sync whose stamp answers the fast path."""
    import time

    from hailo_ollama_service import stamp
    from hailo_ollama_service.user import models as state

    from unit_helpers import TICK, write
    monkeypatch.setattr(stamp.os, "geteuid", lambda: 1000)  # as the service user
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    paths.state_dir.mkdir(parents=True)
    state.sync(paths)
    assert stamp.sync_unchanged(str(paths.root))
    time.sleep(TICK)
    return paths
