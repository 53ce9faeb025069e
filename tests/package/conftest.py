"""Fixtures of the package tests: the .deb, built once per session.

The session builds the package with tools/build-deb into a temporary
directory. Set HOS_DEB=/path/to/hailo-ollama-service_<version>_all.deb to
test an already built package instead (its .changes and .buildinfo, if they
lie beside it, are checked too).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from package_helpers import REPO, run  # noqa: E402


@dataclass(frozen=True)
class Built:
    """A built package: the .deb, its directory, and whether this session built it."""

    deb: Path
    built_here: bool

    @property
    def outdir(self) -> Path:
        return self.deb.parent

    def extras(self) -> list[Path]:
        """The .changes and .buildinfo files of the same version beside the .deb."""
        stem = self.deb.name.rsplit("_", 1)[0]
        return sorted(p for p in self.outdir.iterdir()
                      if p.name.startswith(stem + "_") and p.suffix in (".changes", ".buildinfo"))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The package under test, built once (or taken from $HOS_DEB)."""
    given = os.environ.get("HOS_DEB")
    if given:
        deb = Path(given).resolve()
        if not deb.is_file():
            pytest.fail(f"HOS_DEB={given} is not a file", pytrace=False)
        return Built(deb, built_here=False)
    outdir = tmp_path_factory.mktemp("deb")
    result = run([str(REPO / "tools" / "build-deb"), "--outdir", str(outdir)])
    deb = Path(result.stdout.strip().splitlines()[-1])
    return Built(deb, built_here=True)


@pytest.fixture(scope="session")
def deb(built: Built) -> Path:
    """Path of the built .deb."""
    return built.deb


@pytest.fixture(scope="session")
def control_dir(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The control area of the .deb, extracted (maintainer scripts as built)."""
    target = tmp_path_factory.mktemp("control")
    run(["dpkg-deb", "--control", str(deb), str(target)])
    return target


@pytest.fixture(scope="session")
def fields(deb: Path) -> dict[str, str]:
    """The binary control fields of the .deb."""
    text = run(["dpkg-deb", "--field", str(deb)]).stdout
    out: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            out[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            out[key] = value.strip()
    return out


@pytest.fixture(scope="session")
def contents(deb: Path) -> dict[str, str]:
    """Every path in the .deb (without the leading '.') mapped to its mode string."""
    out: dict[str, str] = {}
    for line in run(["dpkg-deb", "--contents", str(deb)]).stdout.splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0]
        out[name[1:].rstrip("/") or "/"] = parts[0]
    return out


@pytest.fixture(scope="session")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of the .deb, extracted below a scratch directory."""
    target = tmp_path_factory.mktemp("files")
    run(["dpkg-deb", "--extract", str(deb), str(target)])
    return target
