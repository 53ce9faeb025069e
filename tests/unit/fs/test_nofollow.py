"""Tests of fs/nofollow.py: walking a tree another user can write without being steered."""

from __future__ import annotations

import os
import threading

import pytest

from hailo_ollama_service.fs import nofollow
from hailo_ollama_service.fs.atomic import WriteError

from unit_helpers import write


@pytest.fixture
def base(tmp_path):
    (tmp_path / "base").mkdir()
    return tmp_path / "base"


@pytest.fixture
def outside(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    write(target / "file", "precious")
    return target


@pytest.mark.parametrize("rel", ["..", "a/../b", "/etc", "", "a//b", "./a", "a/."])
def test_a_relative_path_that_could_leave_the_base_is_refused(rel):
    with pytest.raises(nofollow.Unsafe):
        nofollow.split(rel)


def test_plain_relative_paths_split_into_their_components():
    assert nofollow.split("qwen2/1.5b/manifest.json") == ["qwen2", "1.5b", "manifest.json"]


def test_a_link_as_the_base_itself_is_refused(tmp_path, outside):
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(nofollow.Unsafe, match="symbolic link"):
        nofollow.open_base(tmp_path / "link")


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_link_at_any_level_of_the_walk_is_refused_never_followed(base, outside, depth):
    parts = ["a", "b", "c"]
    real = base.joinpath(*parts[:depth])
    real.mkdir(parents=True, exist_ok=True)
    (real / parts[depth]).symlink_to(outside)
    with pytest.raises(nofollow.Unsafe, match="symbolic link"):
        with nofollow.opened_dir(base, "/".join(parts), create=True):
            pass
    assert os.listdir(outside) == ["file"]


def test_missing_directories_are_created_with_their_mode(base):
    with nofollow.opened_dir(base, "a/b", create=True, mode=0o750) as fd:
        assert os.fstat(fd).st_ino == (base / "a/b").stat().st_ino
    assert (base / "a/b").stat().st_mode & 0o777 == 0o750


def test_without_create_a_missing_directory_is_file_not_found(base):
    with pytest.raises(FileNotFoundError):
        with nofollow.opened_dir(base, "missing"):
            pass


def test_a_regular_file_is_read_up_to_its_bound(base):
    write(base / "f", "hello")
    with nofollow.opened_dir(base) as fd:
        assert nofollow.read_regular(fd, "f", 5) == b"hello"
        assert nofollow.read_regular(fd, "absent", 5) is None
        with pytest.raises(nofollow.Unsafe, match="more than the 4"):
            nofollow.read_regular(fd, "f", 4)


def test_a_link_to_a_file_is_not_read(base, outside):
    (base / "f").symlink_to(outside / "file")
    with nofollow.opened_dir(base) as fd, pytest.raises(nofollow.Unsafe, match="symbolic link"):
        nofollow.read_regular(fd, "f", 100)


def test_a_fifo_is_refused_without_blocking(base):
    os.mkfifo(base / "fifo")
    done = []

    def read():
        with nofollow.opened_dir(base) as fd:
            try:
                nofollow.read_regular(fd, "fifo", 100)
            except nofollow.Unsafe as err:
                done.append(str(err))
    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    assert done and "not a regular file" in done[0]


def test_a_device_is_refused(base):
    (base / "null").symlink_to("/dev/null")
    with nofollow.opened_dir(base) as fd:
        with pytest.raises(nofollow.Unsafe):
            nofollow.read_regular(fd, "null", 100)


def test_a_huge_sparse_file_is_refused_by_its_size_not_read(base):
    with open(base / "sparse", "wb") as handle:
        handle.truncate(16 << 30)
    with nofollow.opened_dir(base) as fd, pytest.raises(nofollow.Unsafe, match="17179869184 bytes"):
        nofollow.read_regular(fd, "sparse", 1 << 20)


def test_the_walk_reports_links_and_other_files_and_never_enters_a_linked_directory(base, outside):
    write(base / "m/t/manifest.json", "{}")
    (base / "m/linked").symlink_to(outside)
    os.mkfifo(base / "m/t/fifo")
    with nofollow.opened_dir(base) as fd:
        found = dict(nofollow.walk_files(fd))
    assert found == {"m/t/manifest.json": "file", "m/linked": "link", "m/t/fifo": "other"}


def test_the_walk_is_bounded_in_depth_and_entries(base):
    write(base.joinpath(*"abcdefghij") / "deep", "x")
    with nofollow.opened_dir(base) as fd:
        assert list(nofollow.walk_files(fd, depth=8)) == []
        assert list(nofollow.walk_files(fd, depth=10)) == [("a/b/c/d/e/f/g/h/i/j/deep", "file")]
    for i in range(50):
        write(base / "flat" / f"f{i:02}", "x")
    with nofollow.opened_dir(base, "flat") as fd:
        assert len(list(nofollow.walk_files(fd, limit=10))) == 10


def test_write_at_replaces_a_planted_link_instead_of_writing_through_it(base, outside):
    (base / "f").symlink_to(outside / "file")
    with nofollow.opened_dir(base) as fd:
        assert nofollow.write_at(fd, "f", b"new", 0o644, base)
        assert not nofollow.write_at(fd, "f", b"new", 0o644, base)
    assert (outside / "file").read_text() == "precious"
    assert not (base / "f").is_symlink() and (base / "f").read_bytes() == b"new"


def test_write_at_replaces_a_fifo_without_opening_it(base):
    os.mkfifo(base / "f")
    with nofollow.opened_dir(base) as fd:
        assert nofollow.write_at(fd, "f", b"data", 0o644, base)
    assert (base / "f").read_bytes() == b"data"


def test_write_at_into_a_directory_in_the_way_is_one_clear_error(base):
    (base / "f").mkdir()
    with nofollow.opened_dir(base) as fd, pytest.raises(WriteError, match="a directory is in the way"):
        nofollow.write_at(fd, "f", b"data", 0o644, base)
    assert os.listdir(base) == ["f"]


def test_unlink_at_removes_a_link_and_not_its_target(base, outside):
    (base / "l").symlink_to(outside / "file")
    with nofollow.opened_dir(base) as fd:
        assert nofollow.unlink_at(fd, "l") and not nofollow.unlink_at(fd, "l")
    assert (outside / "file").read_text() == "precious"


def test_statvfs_of_a_link_is_refused(tmp_path, outside):
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(nofollow.Unsafe):
        nofollow.statvfs(tmp_path / "link")
    assert nofollow.statvfs(outside).f_frsize > 0
