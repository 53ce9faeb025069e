"""Helpers shared by the package tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "hailo-ollama-service"


def need(tool: str) -> str:
    """Return the path of ``tool``; fail (not skip) the test when it is missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install {tool})", pytrace=False)
    return path


def run(args: list[str], cwd: Path | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``args``; return the CompletedProcess with text stdout/stderr."""
    result = subprocess.run(args, cwd=cwd, text=True, capture_output=True,
                            env=None if env is None else {**os.environ, **env})
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}",
                    pytrace=False)
    return result


def changelog_version() -> str:
    """The version of the top entry of debian/changelog."""
    return run(["dpkg-parsechangelog", "-S", "Version"], cwd=REPO).stdout.strip()
