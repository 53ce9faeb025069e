"""Manifests: which files under models/manifests the stand-in reads and how it names them (every regular
file counts, symlinks), which manifest contents abort the start, and the shipped manifest sets
(manifests-5.1.1, manifests-5.1.2-added, manifests-5.4.0) with their synthesized blobs.

README.md: "Manifests, blobs and how the stand-in pulls".
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from standin_helpers import (
    ADDED,
    FIVE,
    MANIFESTS,
    MANIFESTS_54,
    SIX_54,
    STANDIN_MODULE,
    Layout,
    Standin,
    assert_aborted,
)


# ---------------------------------------------------------------- manifest files under models/manifests
@pytest.mark.parametrize("where", [".gitkeep", "qwen2/.gitkeep", "qwen2/1.5b/README"])
def test_any_file_under_manifests_that_is_not_a_manifest_aborts(
        layout: Layout, run: Callable[..., Standin], where: str) -> None:
    layout.standard()
    (layout.usr_share / "hailo-ollama" / "models" / "manifests" / where).write_text("")
    assert_aborted(run(wait=False))


def test_any_valid_manifest_file_counts_and_is_named_after_its_two_parent_dirs(
        layout: Layout, run: Callable[..., Standin]) -> None:
    manifests = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests"
    shutil.copy(manifests / "qwen2" / "1.5b" / "manifest.json", manifests / "qwen2" / "1.5b" / "manifest.json.bak")
    (manifests / "extra" / "7b").mkdir(parents=True)
    shutil.copy(manifests / "qwen2" / "1.5b" / "manifest.json", manifests / "extra" / "7b" / "any-name.json")
    assert run().get("/hailo/v1/list").json() == {"models": sorted(FIVE + ["extra:7b"])}


def test_a_manifest_with_a_generation_parameter_of_the_wrong_type_aborts(
        layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests" / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    data["generation_params"]["temperature"] = "hot"
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "[json.exception.type_error.302] type must be number, but is string")


def test_a_manifest_without_hef_h10h_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    path = layout.standard().usr_share / "hailo-ollama" / "models" / "manifests" / "qwen2" / "1.5b" / "manifest.json"
    data = json.loads(path.read_text())
    del data["hef_h10h"]
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "key 'hef_h10h' not found")


def test_symlinked_model_dirs_are_not_followed_but_symlinked_manifest_files_are(
        layout: Layout, run: Callable[..., Standin]) -> None:
    elsewhere = layout.manifests(layout.tmp / "elsewhere")
    manifests = layout.usr_share / "hailo-ollama" / "models" / "manifests"
    (manifests / "qwen2").mkdir(parents=True)
    (manifests / "qwen2" / "1.5b").symlink_to(elsewhere / "qwen2" / "1.5b")  # a symlinked dir: ignored
    (manifests / "llama3.2" / "3b").mkdir(parents=True)
    (manifests / "llama3.2" / "3b" / "manifest.json").symlink_to(elsewhere / "llama3.2" / "3b" / "manifest.json")
    layout.config()
    assert run().get("/hailo/v1/list").json() == {"models": ["llama3.2:3b"]}


def test_a_manifests_dir_that_is_itself_a_symlink_is_read(layout: Layout, run: Callable[..., Standin]) -> None:
    elsewhere = layout.manifests(layout.tmp / "elsewhere")
    (layout.usr_share / "hailo-ollama" / "models").mkdir(parents=True)
    (layout.usr_share / "hailo-ollama" / "models" / "manifests").symlink_to(elsewhere)
    layout.config()
    assert run().get("/hailo/v1/list").json() == {"models": FIVE}


# ---------------------------------------------------------------- shipped manifests
@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("manifest.json")) + sorted(ADDED.rglob("manifest.json")),
                         ids=lambda p: f"{p.parent.parent.name}:{p.parent.name}")
def test_each_shipped_manifest_digest_is_the_sha256_of_its_synthesized_blob(path: Path) -> None:
    data = json.loads(path.read_text())
    spec = data["standin"]
    assert spec["blob_seed"] == f"{path.parent.parent.name}:{path.parent.name}"
    assert 1 << 20 <= spec["blob_size"] <= 8 << 20
    blob = STANDIN_MODULE.blob_bytes(spec["blob_seed"], spec["blob_size"])
    assert hashlib.sha256(blob).hexdigest() == data["hef_h10h"]
    assert {"bos_token", "eos_token", "chat_template"} <= set(data["template_params"])
    assert data["details"]["format"] == "hef"


@pytest.mark.parametrize("path", sorted(MANIFESTS_54.rglob("manifest.json")),
                         ids=lambda p: f"{p.parent.parent.name}:{p.parent.name}")
def test_each_shipped_5_4_manifest_names_its_hef_and_the_blob_the_stand_in_library_serves(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["hef_filename"].endswith(".hef") and "hef_h10h" not in data and "template_params" not in data
    assert data["standin"]["blob_seed"] == f"{path.parent.parent.name}:{path.parent.name}@5.4"
    assert 1 << 20 <= data["standin"]["blob_size"] <= 8 << 20
    assert data["details"]["format"] == "hef" and data["license"] is None


def test_the_shipped_5_4_0_manifests_are_the_six_hailo_ollama_models() -> None:
    names = sorted(f"{p.parent.parent.name}:{p.parent.name}" for p in MANIFESTS_54.rglob("manifest.json"))
    assert names == SIX_54
    assert [p for p in MANIFESTS_54.rglob("*") if p.is_file() and p.name != "manifest.json"] == []


def test_the_shipped_5_1_1_manifests_are_the_five_models() -> None:
    names = sorted(f"{p.parent.parent.name}:{p.parent.name}" for p in MANIFESTS.rglob("manifest.json"))
    assert names == FIVE
    assert [p for p in MANIFESTS.rglob("*") if p.is_file() and p.name != "manifest.json"] == []
