"""The two test packages tests/standin/build-debs makes (hailo-gen-ai-model-zoo 5.1.1-1 and 5.1.2-1): their
control fields, contents, conffile and reproducibility, and the script itself (shellcheck).

README.md: "Test packages".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import library_process
from standin_helpers import FIVE, HERE, STANDIN


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    out = tmp_path_factory.mktemp("debs")
    subprocess.run([str(HERE / "build-debs"), str(out)], check=True, capture_output=True)
    return out


def test_build_debs_makes_exactly_the_two_test_packages(debs: Path) -> None:
    assert sorted(p.name for p in debs.iterdir()) == [
        "hailo-gen-ai-model-zoo_5.1.1-1_all.deb", "hailo-gen-ai-model-zoo_5.1.2-1_all.deb"]


@pytest.mark.parametrize("version,models", [("5.1.1-1", FIVE), ("5.1.2-1", sorted(FIVE + ["qwen3:1.7b"]))])
def test_each_deb_ships_the_server_manifests_conffile_and_docs(debs: Path, version: str, models: list[str]) -> None:
    deb = str(debs / f"hailo-gen-ai-model-zoo_{version}_all.deb")
    assert dpkg_deb("-f", deb, "Package", "Version", "Architecture", "Depends").splitlines() == [
        "Package: hailo-gen-ai-model-zoo", f"Version: {version}", "Architecture: all", "Depends: python3"]
    assert "TEST STAND-IN" in dpkg_deb("-f", deb, "Description")
    listing = {line.split()[-1]: line.split()[:2] for line in dpkg_deb("-c", deb).splitlines()}
    assert listing["./usr/bin/hailo-ollama"] == ["-rwxr-xr-x", "root/root"]
    assert listing["./usr/bin/hailo-ollama-standin-library"] == ["-rwxr-xr-x", "root/root"]
    shipped = sorted(f"{p.split('/')[-3]}:{p.split('/')[-2]}" for p in listing if p.endswith("/manifest.json"))
    assert shipped == models
    assert all(p.startswith("./usr/share/hailo-ollama/models/manifests/") for p in listing if p.endswith(".json")
               and "manifests" in p)
    for path in ("./etc/xdg/hailo-ollama/hailo-ollama.json", "./usr/share/doc/hailo-gen-ai-model-zoo/copyright",
                 "./usr/share/doc/hailo-gen-ai-model-zoo/changelog.Debian.gz"):
        assert listing[path] == ["-rw-r--r--", "root/root"], path
    control = subprocess.run(f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles", shell=True,
                             check=True, capture_output=True, text=True).stdout
    assert control == "/etc/xdg/hailo-ollama/hailo-ollama.json\n"
    config = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./etc/xdg/hailo-ollama/hailo-ollama.json",
                            shell=True, check=True, capture_output=True, text=True).stdout
    assert json.loads(config) == {"server": {"host": "0.0.0.0", "port": 8000},
                                  "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
    server = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/hailo-ollama", shell=True,
                            check=True, capture_output=True).stdout
    assert server == STANDIN.read_bytes()
    library = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/hailo-ollama-standin-library",
                             shell=True, check=True, capture_output=True).stdout
    assert library == library_process.PROGRAM.read_bytes()


def test_build_debs_is_reproducible(debs: Path, tmp_path: Path) -> None:
    subprocess.run([str(HERE / "build-debs"), str(tmp_path)], check=True, capture_output=True)
    for deb in debs.iterdir():
        assert (tmp_path / deb.name).read_bytes() == deb.read_bytes(), deb.name


def test_build_debs_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", str(HERE / "build-debs")], check=True)
