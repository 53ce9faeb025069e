"""Tests of user/models.py: the service user's data directory, the manifest mirror and its sync stamp."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from hailo_ollama_service.user import models as state

from unit_helpers import tree, write


def manifest(name: str) -> str:
    return json.dumps({"hef_h10h": f"sha256_{name}"})


def shipped(paths, rel: str, text: str):
    return write(paths.upstream_manifests / rel, text)


def sync(paths, allowed=()):
    paths.state_dir.mkdir(parents=True, exist_ok=True)  # StateDirectory= makes it
    return state.sync(paths, list(allowed))


def mirrored(paths) -> list[str]:
    """The manifests below models/manifests, as model:tag (upstream's names)."""
    return sorted(f"{p.parent.parent.name}:{p.parent.name}" for p in paths.manifests_dir.rglob("manifest.json"))


def ship_models(paths, *names: str):
    for name in names:
        model, tag = name.split(":")
        shipped(paths, f"{model}/{tag}/manifest.json", manifest(name))


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
    assert paths.mirror_record.parent == paths.state_dir


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


def test_a_corrupt_record_is_treated_as_empty_with_a_warning(paths):
    write(paths.mirror_record, "{not json")
    _changed, warnings = sync(paths)
    assert any("not valid JSON" in w for w in warnings)
    assert json.loads(paths.mirror_record.read_text()) == {"mirrored": {}}


def test_the_1_0_0_record_is_taken_over_and_then_deleted(paths):
    gone = shipped(paths, "old/1b/manifest.json", manifest("old"))
    sync(paths)
    record = json.loads(paths.mirror_record.read_text())["mirrored"]
    paths.mirror_record.unlink()
    write(paths.legacy_state, json.dumps({"mirrored": record, "last_good": {"server.port": 1}}))
    gone.unlink()
    changed, _ = sync(paths)
    assert not paths.legacy_state.exists() and str(paths.legacy_state) in changed
    assert not (paths.manifests_dir / "old").exists()  # the taken-over record still knew it


@pytest.mark.parametrize("entry", ["../../../victim", "/abs/victim/manifest.json", "a/../../victim/manifest.json",
                                   "x/./manifest.json", "victim", "a//manifest.json"])
def test_a_record_entry_that_leaves_the_tree_is_ignored(paths, tmp_path, entry):
    victim = write(paths.root / "victim", manifest("v"))
    write(paths.root / "abs/victim/manifest.json", manifest("v"))
    write(paths.mirror_record, json.dumps({"mirrored": {entry: hashlib.sha256(manifest("v").encode()).hexdigest()}}))
    before = tree(paths.root / "abs")
    sync(paths)
    assert victim.read_text() == manifest("v") and tree(paths.root / "abs") == before
    assert json.loads(paths.mirror_record.read_text()) == {"mirrored": {}}


@pytest.mark.parametrize("where", ["models", "models/manifests", "models/blob"])
def test_a_link_in_place_of_a_layout_directory_is_refused_and_its_target_untouched(paths, tmp_path, where):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = paths.state_dir / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    with pytest.raises(state.nofollow.Unsafe, match="symbolic link"):
        sync(paths)
    assert os.listdir(target) == []


@pytest.mark.parametrize("level", ["qwen2", "qwen2/1.5b", "qwen2/1.5b/manifest.json"])
def test_a_link_at_a_model_tag_or_manifest_is_never_written_through(paths, tmp_path, level):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "manifest.json").write_text("precious")
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    shipped(paths, "llama3.2/3b/manifest.json", manifest("b"))
    link = paths.manifests_dir / level
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target / "manifest.json" if level.endswith(".json") else target)
    changed, warnings = sync(paths)
    assert sorted(os.listdir(target)) == ["manifest.json"] and (target / "manifest.json").read_text() == "precious"
    assert (paths.manifests_dir / "llama3.2/3b/manifest.json").read_text() == manifest("b")
    assert any(str(paths.manifests_dir / "qwen2") in w for w in warnings)


def test_a_fifo_or_a_huge_sparse_file_at_a_manifest_or_the_record_neither_blocks_nor_is_read(paths):
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    (paths.manifests_dir / "qwen2/1.5b").mkdir(parents=True)
    os.mkfifo(paths.manifests_dir / "qwen2/1.5b/manifest.json")
    with open(paths.mirror_record, "wb") as handle:
        handle.truncate(8 << 30)
    _changed, warnings = sync(paths)  # would block for ever on the FIFO, or read 8 GiB
    assert any("not a regular file" in w for w in warnings)
    assert any("bytes, more than" in w for w in warnings)


def test_a_second_sync_waits_for_the_lock_and_gives_up_after_a_bound(paths):
    import fcntl
    paths.state_dir.mkdir(parents=True)
    fd = os.open(paths.state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(state.WriteError, match="holds the lock"):
            state.sync(paths, lock_wait=0.2)
    finally:
        os.close(fd)


def test_not_as_root_the_step_runs_in_this_process(paths, monkeypatch):
    monkeypatch.setattr(state.os, "geteuid", lambda: 1000)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    paths.state_dir.mkdir(parents=True)
    changed, warnings, error = state.sync_here(paths)
    assert error is None and str(paths.manifests_dir / "qwen2/1.5b/manifest.json") in changed


def test_a_missing_state_directory_is_one_clear_error(paths, monkeypatch):
    monkeypatch.setattr(state.os, "geteuid", lambda: 1000)
    _changed, _warnings, error = state.sync_here(paths)
    assert error == f"{paths.state_dir}: no such directory (the first start of hailo-ollama.service makes it)"


def test_as_root_the_step_is_refused_and_names_the_restart_that_runs_it_in_the_sandbox(paths, monkeypatch):
    paths.state_dir.mkdir(parents=True)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    monkeypatch.setattr(state.os, "geteuid", lambda: 0)
    monkeypatch.setattr(state, "sync", lambda *a, **k: pytest.fail("root ran the service user's step"))
    changed, warnings, error = state.sync_here(paths)
    assert (changed, warnings) == ([], [])
    assert "systemctl restart hailo-ollama.service" in error
    assert not paths.manifests_dir.exists()


def test_a_deeply_nested_record_starts_a_new_record_instead_of_crashing(paths, monkeypatch):
    monkeypatch.setattr(state.os, "geteuid", lambda: 1000)
    shipped(paths, "qwen2/1.5b/manifest.json", manifest("a"))
    paths.state_dir.mkdir(parents=True)
    paths.mirror_record.write_text('{"mirrored": ' + "[" * 100000 + "]" * 100000 + "}")
    changed, warnings, error = state.sync_here(paths)
    assert error is None and any("levels deep" in w for w in warnings)


def test_a_sync_that_warned_leaves_no_stamp_so_it_warns_again(paths, later):
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    write(paths.manifests_dir / "qwen2/1.5b/manifest.json", "admin's own")
    _changed, warnings = state.sync(paths)
    assert warnings and not paths.sync_stamp.exists()


# ---------------------------------------------------------------- the kiosk allowlist (models.allowed)
def test_only_the_manifests_of_allowed_models_are_mirrored(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b", "llama3.2:1b")
    changed, warnings = sync(paths, ["qwen2:1.5b"])
    assert mirrored(paths) == ["qwen2:1.5b"] and warnings == []
    assert [c for c in changed if c.endswith(".json")] == [str(paths.manifests_dir / "qwen2/1.5b/manifest.json")]
    assert list(json.loads(paths.mirror_record.read_text())["mirrored"]) == ["qwen2/1.5b/manifest.json"]


def test_a_name_without_a_tag_allows_every_tag_of_that_model(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b", "llama3.2:1b")
    sync(paths, ["llama3.2"])
    assert mirrored(paths) == ["llama3.2:1b", "llama3.2:3b"]


def test_a_tag_allows_only_that_tag_and_latest_is_no_default_as_upstream_has_none(paths):
    ship_models(paths, "qwen2:latest", "qwen2:1.5b", "llama3.2:3b")
    _changed, warnings = sync(paths, ["qwen2:latest", "llama3.2:latest"])
    assert mirrored(paths) == ["qwen2:latest"]
    assert len(warnings) == 1 and "'llama3.2:latest'" in warnings[0]


def test_the_name_is_the_two_folders_above_the_manifest_as_upstream_names_it(paths):
    shipped(paths, "vendor/qwen2/1.5b/manifest.json", manifest("v"))
    shipped(paths, "qwen2.5/1.5b/manifest.json", manifest("q"))
    sync(paths, ["qwen2"])
    assert (paths.manifests_dir / "vendor/qwen2/1.5b/manifest.json").exists()
    assert not (paths.manifests_dir / "qwen2.5").exists()
    assert state.model_tag(paths.manifests_dir, "x/manifest.json") == ("manifests", "x")


def test_narrowing_the_allowlist_removes_earlier_copies_but_never_a_hand_added_manifest(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    sync(paths)
    mine = write(paths.manifests_dir / "mine/1b/manifest.json", manifest("mine"))
    my_tag = write(paths.manifests_dir / "llama3.2/8b/manifest.json", manifest("my llama"))
    blob = write(paths.blob_dir / "sha256_abc", b"weights")
    changed, warnings = sync(paths, ["qwen2"])
    assert changed == [str(paths.manifests_dir / "llama3.2/3b/manifest.json")] and warnings == []
    assert not (paths.manifests_dir / "llama3.2/3b").exists()
    assert mine.read_text() == manifest("mine") and my_tag.read_text() == manifest("my llama")
    assert blob.read_bytes() == b"weights"
    assert mirrored(paths) == ["llama3.2:8b", "mine:1b", "qwen2:1.5b"]


def test_a_narrowed_out_copy_with_nothing_else_in_its_folders_leaves_no_empty_folder(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    sync(paths)
    sync(paths, ["qwen2:1.5b"])
    assert sorted(os.listdir(paths.manifests_dir)) == ["qwen2"]


def test_widening_the_allowlist_brings_the_removed_copies_back(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b", "llama3.2:1b")
    sync(paths, ["qwen2"])
    changed, warnings = sync(paths, ["qwen2", "llama3.2:3b"])
    assert changed == [str(paths.manifests_dir / "llama3.2/3b/manifest.json")] and warnings == []
    assert (paths.manifests_dir / "llama3.2/3b/manifest.json").read_text() == manifest("llama3.2:3b")
    assert mirrored(paths) == ["llama3.2:3b", "qwen2:1.5b"]


def test_an_empty_allowlist_mirrors_every_model(paths):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    sync(paths, ["qwen2"])
    sync(paths, [])
    assert mirrored(paths) == ["llama3.2:3b", "qwen2:1.5b"]


def test_an_allowed_name_upstream_does_not_ship_warns_once_but_leaves_the_stamp(paths, later):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    _changed, warnings = sync(paths, ["qwen2", "qwn2", "llama3.2:8b", "qwn2"])
    assert mirrored(paths) == ["qwen2:1.5b"]
    assert len(warnings) == 2 and "'qwn2'" in warnings[0] and "'llama3.2:8b'" in warnings[1]
    assert all("models.allowed" in w and "\n" not in w for w in warnings)
    # the tree is complete; the same inputs would only repeat it (see sync)
    assert state.stamp.sync_unchanged(str(paths.root), "qwen2,qwn2,llama3.2:8b,qwn2")


def test_a_locally_changed_copy_the_allowlist_leaves_out_is_kept_with_a_warning_and_no_stamp(paths, later):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    sync(paths)
    copy = write(paths.manifests_dir / "llama3.2/3b/manifest.json", manifest("edited"))
    _changed, warnings = sync(paths, ["qwen2"])
    assert copy.read_text() == manifest("edited")
    assert len(warnings) == 1 and "changed locally; models.allowed leaves it out" in warnings[0]
    assert not paths.sync_stamp.exists()


def test_a_link_in_place_of_a_copy_the_allowlist_leaves_out_is_left_with_a_warning(paths, tmp_path):
    ship_models(paths, "qwen2:1.5b", "llama3.2:3b")
    sync(paths)
    target = write(tmp_path / "elsewhere/manifest.json", manifest("llama3.2:3b"))
    link = paths.manifests_dir / "llama3.2/3b/manifest.json"
    link.unlink()
    link.symlink_to(target)
    _changed, warnings = sync(paths, ["qwen2"])
    assert link.is_symlink() and target.read_text() == manifest("llama3.2:3b")
    assert len(warnings) == 1 and "models.allowed leaves it out" in warnings[0]
