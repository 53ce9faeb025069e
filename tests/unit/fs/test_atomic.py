"""Tests of fs/atomic.py: atomic writes, modes, symlinks, the render lock."""

from __future__ import annotations

import os
import stat

import pytest

from hailo_ollama_service.fs import atomic as fsutil
from hailo_ollama_service.fs.atomic import WriteError

from unit_helpers import write


def test_a_write_creates_the_file_with_the_mode_given(tmp_path):
    target = tmp_path / "f"
    assert fsutil.write_atomic(target, b"data", 0o640)
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_writing_the_same_content_again_changes_nothing(tmp_path):
    target = tmp_path / "f"
    fsutil.write_atomic(target, b"data")
    inode = target.stat().st_ino
    assert not fsutil.write_atomic(target, b"data")
    assert target.stat().st_ino == inode


def test_a_wrong_mode_alone_is_a_change_that_gets_fixed(tmp_path):
    target = write(tmp_path / "f", b"data")
    os.chmod(target, 0o600)
    assert fsutil.write_atomic(target, b"data", 0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_the_file_is_replaced_by_rename_not_rewritten_in_place(tmp_path):
    target = write(tmp_path / "f", b"old")
    with open(target, "rb") as reader:
        fsutil.write_atomic(target, b"new")
        assert reader.read() == b"old"  # a reader never sees a half-written file
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_world_writable_files_are_refused(tmp_path):
    with pytest.raises(WriteError, match="world-writable"):
        fsutil.write_atomic(tmp_path / "f", b"x", 0o666)


def test_a_symlink_at_the_target_is_refused(tmp_path):
    victim = write(tmp_path / "victim", b"keep")
    (tmp_path / "f").symlink_to(victim)
    with pytest.raises(WriteError, match="symbolic link"):
        fsutil.write_atomic(tmp_path / "f", b"evil")
    assert victim.read_bytes() == b"keep"


def test_a_dangling_symlink_at_the_target_is_refused_too(tmp_path):
    (tmp_path / "f").symlink_to(tmp_path / "nowhere")
    with pytest.raises(WriteError, match="symbolic link"):
        fsutil.write_atomic(tmp_path / "f", b"evil")
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fsutil.os, "fsync", broken)
    with pytest.raises(WriteError, match="No space left"):
        fsutil.write_atomic(tmp_path / "f", b"x")
    assert list(tmp_path.iterdir()) == []


def test_ensure_dir_creates_sets_the_mode_and_refuses_symlinks(tmp_path):
    assert fsutil.ensure_dir(tmp_path / "a/b", 0o750)
    assert stat.S_IMODE((tmp_path / "a/b").stat().st_mode) == 0o750
    assert not fsutil.ensure_dir(tmp_path / "a/b", 0o750)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    with pytest.raises(WriteError, match="symbolic link"):
        fsutil.ensure_dir(tmp_path / "link")


def test_the_lock_serialises_holders(tmp_path):
    import fcntl
    lock = tmp_path / "run/lock"
    with fsutil.locked(lock):
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
