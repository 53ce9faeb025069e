"""Tests of state.py: the data directory and the manifest mirror."""

from __future__ import annotations

import json

from unit_helpers import write

from hailo_ollama_service import state


def manifest(name: str) -> str:
    return json.dumps({"hef_h10h": f"sha256_{name}"})


def shipped(paths, rel: str, text: str):
    return write(paths.upstream_manifests / rel, text)


def sync(paths):
    book = state.read_state(paths)
    result = state.sync(paths, None, book)
    state.write_state(paths, book)
    return result


def test_upstream_manifests_are_mirrored_into_the_data_directory(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    shipped(paths, "llama3.2/3b/manifest.json", manifest("b"))
    changed, warnings = sync(paths)
    assert (paths.manifests_dir / "qwen2/1.5b/manifest.json").read_text() == manifest("a")
    assert (paths.manifests_dir / "llama3.2/3b/manifest.json").read_text() == manifest("b")
    assert str(paths.manifests_dir / "qwen2/1.5b/manifest.json") in changed
    assert warnings == []


def test_nothing_but_manifests_is_ever_placed_under_models_manifests(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    shipped(paths, "qwen2/README", "upstream notes")
    sync(paths)
    files = [p for p in paths.manifests_dir.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["manifest.json"]
    assert paths.render_state.parent == paths.state_dir


def test_an_unchanged_mirror_changes_nothing(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    sync(paths)
    assert sync(paths) == ([], [])


def test_an_updated_upstream_manifest_is_updated_in_the_mirror(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    sync(paths)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a2"))
    changed, _ = sync(paths)
    assert changed == [str(paths.manifests_dir / "qwen2/1.5b/manifest.json")]
    assert (paths.manifests_dir / "qwen2/1.5b/manifest.json").read_text() == manifest("a2")


def test_a_manifest_upstream_removed_is_removed_with_its_empty_folders(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    gone = shipped(paths, "old/1b/manifest.json", manifest("old"))
    sync(paths)
    gone.unlink()
    changed, _ = sync(paths)
    assert changed == [str(paths.manifests_dir / "old/1b/manifest.json")]
    assert not (paths.manifests_dir / "old").exists()
    assert (paths.manifests_dir / "qwen2/1.5b/manifest.json").exists()


def test_models_the_admin_added_and_pulled_blobs_are_never_touched(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    mine = write(paths.manifests_dir / "mine/1b/manifest.json", manifest("mine"))
    blob = write(paths.blob_dir / "sha256_abc", b"weights")
    sync(paths)
    (paths.upstream_manifests / "qwen2/1.5b/manifest.json").unlink()
    sync(paths)
    assert mine.read_text() == manifest("mine")
    assert blob.read_bytes() == b"weights"


def test_an_admins_different_file_where_upstream_adds_one_is_kept_with_a_warning(paths):
    mine = write(paths.manifests_dir / "qwen2/1.5b/manifest.json", manifest("mine"))
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    _changed, warnings = sync(paths)
    assert mine.read_text() == manifest("mine")
    assert warnings and "not created by hailo-ollama-service" in warnings[0]


def test_a_mirrored_manifest_changed_locally_is_kept_when_upstream_drops_it(paths):
    gone = shipped(paths, "old/1b/manifest.json", manifest("old"))
    sync(paths)
    copy = paths.manifests_dir / "old/1b/manifest.json"
    copy.write_text(manifest("edited"))
    gone.unlink()
    _changed, warnings = sync(paths)
    assert copy.read_text() == manifest("edited")
    assert "changed locally" in warnings[0]


def test_symlinked_upstream_folders_are_not_followed(paths, tmp_path):
    write(tmp_path / "elsewhere/x/1b/manifest.json", manifest("x"))
    paths.upstream_manifests.mkdir(parents=True)
    (paths.upstream_manifests / "x").symlink_to(tmp_path / "elsewhere/x")
    sync(paths)
    assert not (paths.manifests_dir / "x").exists()


def test_without_upstream_manifests_the_layout_is_still_created(paths):
    sync(paths)
    assert paths.manifests_dir.is_dir() and paths.blob_dir.is_dir()


def test_ownership_is_left_alone_when_not_root_or_no_service_user(monkeypatch):
    monkeypatch.setattr(state.os, "geteuid", lambda: 1000)
    assert state.service_owner() is None
    monkeypatch.setattr(state.os, "geteuid", lambda: 0)
    assert state.service_owner("no-such-user-hos") is None


def test_a_corrupt_bookkeeping_file_is_treated_as_empty(paths):
    write(paths.render_state, "{not json")
    assert state.read_state(paths) == {}


def test_the_layout_and_mirrored_manifests_are_owned_by_the_given_owner(paths):
    import os

    import pytest
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    owner = (65534, 65534)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    book: dict = {}
    state.sync(paths, owner, book)
    for path in (paths.state_dir, paths.models_dir, paths.manifests_dir, paths.blob_dir,
                 paths.manifests_dir / "qwen2", paths.manifests_dir / "qwen2/1.5b/manifest.json"):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == owner, path
    assert state.sync(paths, owner, book) == ([], [])  # correct ownership is no change
