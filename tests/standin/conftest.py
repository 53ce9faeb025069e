"""Fixtures of the stand-in's tests: a scratch layout per test, stand-ins started in it, the stand-in library.

The helpers the fixtures and tests build on are in standin_helpers.py. This file puts tests/standin on
sys.path first, so that test modules can `from standin_helpers import ...` (pytest runs in importlib mode).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin_helpers import MANIFESTS, MANIFESTS_54, Layout, Library, Standin  # noqa: E402 - after the sys.path entry


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


@pytest.fixture
def run(layout: Layout) -> Iterator[Callable[..., Standin]]:
    """Start stand-ins (waiting for them to listen unless wait=False); all are killed afterwards."""
    started: list[Standin] = []

    def start(env: dict[str, Any] | None = None, args: tuple[str, ...] = (), wait: bool = True) -> Standin:
        standin = Standin(layout, env or {}, args)
        started.append(standin)
        return standin.wait_running() if wait else standin

    yield start
    for standin in started:
        standin.kill()


@pytest.fixture
def server(layout: Layout, run: Callable[..., Standin]) -> Standin:
    """A 5.1 stand-in on the standard layout."""
    layout.standard()
    return run()


@pytest.fixture
def library() -> Iterator[Callable[..., Library]]:
    """Start stand-in libraries (hailo-ollama-library on a free loopback port); all are stopped afterwards."""
    started: list[Library] = []

    def start(*args: str, manifests: tuple[Path, ...] = (MANIFESTS, MANIFESTS_54)) -> Library:
        """The library for the blobs of MANIFESTS (the 5.1 and 5.4 ones by default)."""
        started.append(Library(*args, manifests=manifests))
        return started[-1]

    yield start
    for one in started:
        one.stop()
