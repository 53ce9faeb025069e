"""Tests of root/keys.py: root's store of API keys (names, roles, digests; never a key)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

import pytest

from hailo_ollama_service.root import keys
from hailo_ollama_service.root.keys import KeyError_

from unit_helpers import write

DIGEST = "0123456789abcdef" * 4


def test_a_new_key_is_hos_and_43_url_safe_characters_and_only_its_digest_is_stored(paths):
    key, changed = keys.add(paths, "alice", admin=False)
    assert changed and re.fullmatch(r"hos_[A-Za-z0-9_-]{43}", key)
    text = paths.keys_file.read_text()
    assert key not in text and key[4:] not in text
    [stored] = json.loads(text)["keys"]
    assert stored["sha256"] == hashlib.sha256(key.encode()).hexdigest() == keys.digest(key)
    assert (stored["name"], stored["role"]) == ("alice", "user")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored["created"])


def test_two_new_keys_differ(paths):
    first, _ = keys.add(paths, "a", admin=False)
    second, _ = keys.add(paths, "b", admin=True)
    assert first != second
    assert [(k.name, k.role) for k in keys.load(paths)] == [("a", "user"), ("b", "admin")]


def test_the_store_is_readable_by_root_only(paths):
    keys.add(paths, "alice", admin=True)
    assert stat.S_IMODE(paths.keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.book_dir.stat().st_mode) == 0o755


def test_without_a_store_there_are_no_keys(paths):
    assert keys.load(paths) == []


def test_a_name_in_use_is_refused_with_how_to_revoke_it(paths):
    keys.add(paths, "alice", admin=False)
    before = paths.keys_file.read_bytes()
    with pytest.raises(KeyError_, match="a key named 'alice' exists \\(user\\); revoke it first: "
                                        "hailo-ollama-service keys revoke alice"):
        keys.add(paths, "alice", admin=False)
    assert paths.keys_file.read_bytes() == before


def test_a_digest_added_again_with_the_same_name_and_role_changes_nothing(paths):
    assert keys.add(paths, "fleet", admin=False, sha256=DIGEST.upper()) == (None, True)
    before = os.stat(paths.keys_file)
    assert keys.add(paths, "fleet", admin=False, sha256=DIGEST) == (None, False)
    after = os.stat(paths.keys_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [k.sha256 for k in keys.load(paths)] == [DIGEST]


@pytest.mark.parametrize("admin, digest", [(True, DIGEST), (False, "f" * 64)])
def test_the_same_name_with_another_role_or_digest_is_refused(paths, admin, digest):
    keys.add(paths, "fleet", admin=False, sha256=DIGEST)
    with pytest.raises(KeyError_, match="a key named 'fleet' exists"):
        keys.add(paths, "fleet", admin=admin, sha256=digest)
    assert [(k.role, k.sha256) for k in keys.load(paths)] == [("user", DIGEST)]


def test_the_same_digest_under_another_name_is_refused(paths):
    keys.add(paths, "fleet", admin=False, sha256=DIGEST)
    with pytest.raises(KeyError_, match="this key is stored already, as 'fleet'"):
        keys.add(paths, "other", admin=True, sha256=DIGEST)


@pytest.mark.parametrize("name", ["", "-dash", ".hidden", "a b", "a/b", "x" * 65, "caf\u00e9", "a\nb"])
def test_a_bad_name_is_refused_and_nothing_is_stored(paths, name):
    with pytest.raises(KeyError_, match="key name .*: use up to 64 letters"):
        keys.add(paths, name, admin=False)
    assert not paths.keys_file.exists()


@pytest.mark.parametrize("name", ["a", "alice@example.org", "ci-runner_2.lab", "x" * 64])
def test_good_names_are_accepted(name):
    assert keys.check_name(name) == name


@pytest.mark.parametrize("digest", ["", "0" * 63, "0" * 65, "g" * 64, DIGEST + "\n", "sha256:" + DIGEST])
def test_a_bad_digest_is_refused_and_nothing_is_stored(paths, digest):
    with pytest.raises(KeyError_, match="--sha256: expected 64 hex digits"):
        keys.add(paths, "fleet", admin=False, sha256=digest)
    assert not paths.keys_file.exists()


def test_revoke_removes_the_key_and_an_unknown_name_is_refused(paths):
    keys.add(paths, "alice", admin=False)
    keys.add(paths, "bob", admin=True)
    keys.revoke(paths, "alice")
    assert [k.name for k in keys.load(paths)] == ["bob"]
    with pytest.raises(KeyError_, match="no key named 'alice' \\(see: hailo-ollama-service keys list\\)"):
        keys.revoke(paths, "alice")
    assert [k.name for k in keys.load(paths)] == ["bob"]


def test_keys_are_listed_in_name_order(paths):
    for name in ("zed", "amy", "Mo"):
        keys.add(paths, name, admin=False)
    assert [k.name for k in keys.load(paths)] == ["Mo", "amy", "zed"]


def stored(paths) -> None:
    keys.add(paths, "alice", admin=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")
def test_a_store_written_by_another_user_is_refused(paths):
    stored(paths)
    os.chown(paths.keys_file, 1000, 1000)
    with pytest.raises(KeyError_, match="not written by root only; refusing to use it"):
        keys.load(paths)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_group_or_world_writable_store_is_refused(paths, mode):
    stored(paths)
    paths.keys_file.chmod(mode)
    with pytest.raises(KeyError_, match="refusing to use it"):
        keys.load(paths)
    with pytest.raises(KeyError_):
        keys.add(paths, "bob", admin=False)


def test_a_store_in_a_directory_others_may_write_is_refused(paths):
    stored(paths)
    paths.book_dir.chmod(0o777)
    with pytest.raises(KeyError_, match="refusing to use it"):
        keys.load(paths)


def test_a_link_in_place_of_the_store_is_refused_even_to_a_good_store(paths, tmp_path):
    stored(paths)
    elsewhere = tmp_path / "elsewhere.json"
    paths.keys_file.rename(elsewhere)
    paths.keys_file.symlink_to(elsewhere)
    with pytest.raises(KeyError_, match="a link"):
        keys.load(paths)
    elsewhere.unlink()  # dangling: still not "no store"
    with pytest.raises(KeyError_):
        keys.load(paths)


@pytest.mark.parametrize("text, fragment", [
    ("[]", "not a key store"), ('{"keys": [{"name": "a"}]}', "not a key store"), ("{", "not a key store"),
    (json.dumps({"keys": [{"name": "a", "role": "root", "sha256": DIGEST, "created": ""}]}), "'a' is malformed"),
    (json.dumps({"keys": [{"name": "a", "role": "user", "sha256": "x", "created": ""}]}), "'a' is malformed"),
    (json.dumps({"keys": [{"name": "../a", "role": "user", "sha256": DIGEST, "created": ""}]}), "malformed")])
def test_a_malformed_store_is_refused_and_add_does_not_overwrite_it(paths, text, fragment):
    write(paths.keys_file, text).chmod(0o600)
    with pytest.raises(KeyError_, match=re.escape(fragment)):
        keys.load(paths)
    with pytest.raises(KeyError_):
        keys.add(paths, "bob", admin=False)
    assert paths.keys_file.read_text() == text
