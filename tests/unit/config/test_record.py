"""Tests of config/record.py: root's own record of the last good settings, and the values served."""

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


def test_a_bookkeeping_file_others_could_write_is_ignored(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    doc = json.loads(paths.book.read_text())
    doc["last_good"]["server.port"] = 11999
    paths.book.write_text(json.dumps(doc))
    os.chmod(paths.book, 0o666)
    assert bookkeeping.served_values(paths)["server.port"] == 11500  # from the settings, not the file


def test_served_values_are_the_last_good_ones_while_the_settings_are_invalid(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    write(paths.conffile, "server:\n  port: 0\n")
    assert bookkeeping.served_values(paths)["server.port"] == 11500


def test_served_values_fall_back_to_the_settings_before_the_first_render(paths):
    write(paths.conffile, "server:\n  port: 11600\n")
    assert bookkeeping.served_values(paths)["server.port"] == 11600
