"""Tests of stamp.py: a stamp answers only while nothing it lists changed, and any change defeats it.

The stamps are written by root's apply and the service user's sync; the
fixtures ``stamped``, ``synced`` and ``later`` are in conftest.py.
"""

from __future__ import annotations

import os
import time

import pytest

from hailo_ollama_service import stamp

from unit_helpers import TICK, apply_quietly, render_unchanged, write


def test_an_in_place_edit_of_the_same_size_defeats_it(stamped):
    stamped.conffile.write_text("server:\n  port: 11501\n")
    assert not render_unchanged(stamped)


def test_an_edit_with_its_mtime_put_back_defeats_it(stamped):
    info = stamped.conffile.stat()
    stamped.conffile.write_text("server:\n  port: 11501\n")
    os.utime(stamped.conffile, ns=(info.st_atime_ns, info.st_mtime_ns))  # touch -r
    assert stamped.conffile.stat().st_mtime_ns == info.st_mtime_ns
    assert not render_unchanged(stamped)


def test_a_file_replaced_by_rename_defeats_it(stamped):
    new = write(stamped.conffile.with_name(".swp"), stamped.conffile.read_text())
    os.rename(new, stamped.conffile)
    assert not render_unchanged(stamped)


def test_a_layer_added_or_removed_defeats_it(stamped, later):
    extra = write(stamped.layer_dir / "50-fleet.yaml", "")
    assert not render_unchanged(stamped)
    apply_quietly(stamped)
    assert render_unchanged(stamped)
    time.sleep(TICK)
    extra.unlink()
    assert not render_unchanged(stamped)


def test_a_deleted_or_changed_output_defeats_it(stamped):
    stamped.env_file.unlink()  # a reboot empties /run
    assert not render_unchanged(stamped)


def test_a_touched_output_defeats_it(stamped):
    os.chmod(stamped.dropin, 0o600)
    assert not render_unchanged(stamped)


def test_a_package_upgrade_defeats_it(stamped, monkeypatch):
    monkeypatch.setattr(stamp, "__version__", "9.9.9")
    assert not render_unchanged(stamped)


@pytest.mark.parametrize("module", ["entry.py", "cli/main.py"])
def test_a_package_file_replaced_as_dpkg_does_defeats_it_also_in_a_folder(stamped, monkeypatch, tmp_path, module):
    copy = tmp_path / "pkg"
    write(copy / "entry.py", "x")
    write(copy / "cli/main.py", "x")
    monkeypatch.setattr(stamp, "PACKAGE_DIR", str(copy))
    apply_quietly(stamped)
    assert render_unchanged(stamped)
    time.sleep(TICK)
    write(copy / f"{module}.dpkg-new", "y")
    os.rename(copy / f"{module}.dpkg-new", copy / module)
    assert not render_unchanged(stamped)


def test_a_new_upstream_manifest_defeats_it(stamped):
    write(stamped.upstream_manifests / "llama3.2/3b/manifest.json", "{}")
    assert not render_unchanged(stamped, try_restart=True)


def test_a_stamp_from_a_render_that_did_not_sync_does_not_answer_a_try_restart(paths, later):
    apply_quietly(paths, try_restart=False)
    assert render_unchanged(paths) and not render_unchanged(paths, try_restart=True)


def test_no_stamp_is_kept_while_a_stamped_file_is_younger_than_the_clock_can_tell(paths):
    apply_quietly(paths)
    assert not paths.stamp.exists() and not render_unchanged(paths)


def test_a_stamp_others_could_write_or_of_another_format_is_ignored(stamped):
    os.chmod(stamped.stamp, 0o666)
    assert not render_unchanged(stamped)
    os.chmod(stamped.stamp, 0o644)
    stamped.stamp.write_text(stamped.stamp.read_text().replace(stamp.STAMP_HEADER, "other 2"))
    assert not render_unchanged(stamped)


@pytest.mark.parametrize("change", ["mirrored manifest deleted", "upstream manifest added", "blob pulled",
                                    "record edited", "models dir replaced"])
def test_any_change_to_the_models_or_upstream_defeats_the_sync_fast_path(synced, change):
    import shutil
    if change == "mirrored manifest deleted":
        (synced.manifests_dir / "qwen2/1.5b/manifest.json").unlink()
    elif change == "upstream manifest added":
        write(synced.upstream_manifests / "llama3.2/3b/manifest.json", "{}")
    elif change == "blob pulled":
        write(synced.blob_dir / "sha256_00", "weights")
    elif change == "record edited":
        synced.mirror_record.write_text(synced.mirror_record.read_text())
    else:
        shutil.move(synced.models_dir, synced.state_dir / "old")
        shutil.copytree(synced.state_dir / "old", synced.models_dir)
    assert not stamp.sync_unchanged(str(synced.root))


# ---------------------------------------------------------------- the sync stamp and the kiosk allowlist
@pytest.fixture
def allowlisted(paths, later, monkeypatch):
    """``paths`` synced with the allowlist qwen2, root's environment file in place."""
    from hailo_ollama_service.user import models
    monkeypatch.delenv(stamp.MODELS_ENV, raising=False)
    write(paths.env_file, "OLLAMA_HOST=127.0.0.1:11434\nHAILO_OLLAMA_SERVICE_MODELS=qwen2\n")
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    write(paths.upstream_manifests / "llama3.2/3b/manifest.json", "{}")
    paths.state_dir.mkdir(parents=True)
    assert models.sync(paths, ["qwen2"])[1] == []
    time.sleep(TICK)
    return paths


def test_the_sync_fast_path_is_taken_when_nothing_changed(allowlisted):
    assert stamp.sync_unchanged(str(allowlisted.root), "qwen2")
    assert stamp.sync_unchanged(str(allowlisted.root), "qwen2")


@pytest.mark.parametrize("change", ["rewritten", "replaced", "deleted"])
def test_a_changed_environment_file_defeats_the_sync_fast_path(allowlisted, change):
    if change == "rewritten":
        allowlisted.env_file.write_text(allowlisted.env_file.read_text())
    elif change == "replaced":
        os.rename(write(allowlisted.env_file.with_name(".new"), allowlisted.env_file.read_text()),
                  allowlisted.env_file)
    else:
        allowlisted.env_file.unlink()  # a reboot empties /run
    assert not stamp.sync_unchanged(str(allowlisted.root), "qwen2")


@pytest.mark.parametrize("value", ["", "llama3.2", "qwen2,llama3.2", "qwen2:1.5b", "qwen2\nsynced"])
def test_another_allowlist_defeats_the_sync_fast_path_with_the_file_unchanged(allowlisted, value):
    assert not stamp.sync_unchanged(str(allowlisted.root), value)


def test_an_allowlist_sync_without_a_file_still_tells_the_values_apart(paths, later):
    from hailo_ollama_service.user import models
    paths.state_dir.mkdir(parents=True)
    models.sync(paths, [])
    assert stamp.sync_unchanged(str(paths.root), "")
    assert not stamp.sync_unchanged(str(paths.root), "qwen2")


def test_without_a_value_the_sync_fast_path_takes_this_processes_environment(allowlisted, monkeypatch):
    assert not stamp.sync_unchanged(str(allowlisted.root))  # unset: every model, not qwen2
    monkeypatch.setenv(stamp.MODELS_ENV, "qwen2")
    assert stamp.sync_unchanged(str(allowlisted.root))
    monkeypatch.setenv(stamp.MODELS_ENV, "llama3.2")
    assert not stamp.sync_unchanged(str(allowlisted.root))
