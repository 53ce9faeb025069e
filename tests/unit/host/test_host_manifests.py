"""Tests of host/manifests.py: what doctor, as root, reads of the service user's model tree."""

from __future__ import annotations

import json
import os

from hailo_ollama_service.host import doctor, manifests

from unit_helpers import host_for, write


def test_as_root_doctor_follows_no_link_and_opens_no_fifo_in_the_service_users_tree(paths, tmp_path):
    outside = tmp_path / "outside"
    write(outside / "a/1b/manifest.json", json.dumps({"size": 99 * 1024 ** 4}))
    paths.manifests_dir.mkdir(parents=True)
    (paths.manifests_dir / "linked").symlink_to(outside / "a")
    write(paths.manifests_dir / "q/1b/manifest.json", json.dumps({"size": 1}))
    (paths.manifests_dir / "q/2b").mkdir()
    os.mkfifo(paths.manifests_dir / "q/2b/manifest.json")
    (paths.manifests_dir / "q/3b").mkdir()
    with open(paths.manifests_dir / "q/3b/manifest.json", "wb") as handle:
        handle.truncate(8 << 30)
    assert manifests.listed(paths) == ["q/1b/manifest.json", "q/3b/manifest.json"]
    largest, unread = manifests.largest(paths)  # the FIFO is not opened, the sparse file not read
    assert largest == 1 and len(unread) == 1 and unread[0].startswith("q/3b/manifest.json: ")
    check = doctor.check_models(host_for(paths), [], [], api_up=False)
    assert "2 manifests" in check.found
