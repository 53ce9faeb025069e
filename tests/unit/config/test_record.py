"""Tests of bookkeeping.py: root's own record, and rebuilding it from root's rendered files."""

from __future__ import annotations

import json
import os

from hailo_ollama_service.config import record as bookkeeping
from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.root import render

from unit_helpers import write


def test_what_is_written_is_read_back(paths):
    assert bookkeeping.write(paths, {"last_good": {"server.port": 11500}})
    assert not bookkeeping.write(paths, {"last_good": {"server.port": 11500}})
    assert bookkeeping.read(paths) == {"last_good": {"server.port": 11500}}


def test_a_missing_corrupt_linked_or_fifo_record_reads_as_empty(paths, tmp_path):
    assert bookkeeping.read(paths) == {}
    write(paths.book, "{not json")
    assert bookkeeping.read(paths) == {}
    paths.book.unlink()
    paths.book.symlink_to(write(tmp_path / "elsewhere.json", json.dumps({"last_good": {}})))
    assert bookkeeping.read(paths) == {}
    paths.book.unlink()
    os.mkfifo(paths.book)
    assert bookkeeping.read(paths) == {}  # and does not block


def test_a_record_in_a_directory_others_can_write_is_ignored(paths):
    bookkeeping.write(paths, {"last_good": {"server.port": 11500}})
    os.chmod(paths.book_dir, 0o777)
    assert bookkeeping.read(paths) == {}


def test_last_good_values_are_checked_by_the_schema(paths):
    assert bookkeeping.last_good({"last_good": {"server.port": 11500}})["server.port"] == 11500
    assert bookkeeping.last_good({"last_good": {"server.port": "11500\nUser=root"}}) is None
    assert bookkeeping.last_good({"last_good": "nonsense"}) is None
    assert bookkeeping.last_good({"last_good": {"unknown.key": 1}}) == DEFAULTS


def test_the_last_good_settings_are_rebuilt_from_the_json_drop_in_and_environment(paths):
    write(paths.conffile, "server:\n  host: ::1\n  port: 11500\nlibrary:\n  host: mirror.lan\n  port: 8443\n"
          "main_poll_time_ms: 150\nresource_limits:\n  memory_max: 3G\n  cpu_quota: infinity\n"
          "device:\n  group_id: SHARED\nwarmup:\n  model: qwen2:1.5b\n")
    render.render(paths)
    expected = dict(json.loads(paths.book.read_text())["last_good"], **{"warmup.model": ""})
    assert bookkeeping.recover(paths) == expected


def test_nothing_is_rebuilt_without_a_usable_json(paths):
    assert bookkeeping.recover(paths) is None
    write(paths.upstream_json, '{"server": {"port": 1}}')
    assert bookkeeping.recover(paths) is None
    write(paths.upstream_json, json.dumps({"server": {"host": "0.0.0.0", "port": 0}, "library": {
        "host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}))
    assert bookkeeping.recover(paths) is None  # port 0 fails the schema
