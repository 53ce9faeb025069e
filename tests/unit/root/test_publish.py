"""Tests of root/publish.py: root's copy of the metrics for node_exporter, and the line grammar it checks."""

from __future__ import annotations

import os

import pytest

from hailo_ollama_service.fs.atomic import WriteError
from hailo_ollama_service.fs.nofollow import Unsafe
from hailo_ollama_service.host import metrics
from hailo_ollama_service.root import publish

from unit_helpers import write


@pytest.fixture
def written(tmp_path):
    source = write(tmp_path / "run/hailo-ollama.prom", "# HELP hailo_ollama_up x\n# TYPE hailo_ollama_up gauge\n"
                   "hailo_ollama_up 1\n")
    target = tmp_path / "textfile"
    target.mkdir()
    return source, target


def test_publish_copies_the_metrics_atomically_and_then_changes_nothing(written):
    source, target = written
    assert publish.publish(source, target)
    assert (target / "hailo-ollama.prom").read_bytes() == source.read_bytes()
    assert oct((target / "hailo-ollama.prom").stat().st_mode & 0o777) == "0o644"
    assert not publish.publish(source, target)
    assert os.listdir(target) == ["hailo-ollama.prom"]


@pytest.mark.parametrize("content, message", [
    ("node_cpu_seconds_total 1\n", "not a hailo_ollama_ metric line"),
    ("hailo_ollama_up 1\x1b[2J\n", "not a hailo_ollama_ metric line"),
    ("hailo_ollama_up 1", "incomplete"),
    ("# HELP node_x y\n", "not a hailo_ollama_ metric line")])
def test_publish_refuses_what_does_not_look_like_our_metrics(written, content, message):
    source, target = written
    source.write_text(content)
    with pytest.raises(WriteError, match=message):
        publish.publish(source, target)
    assert os.listdir(target) == []


@pytest.mark.parametrize("content, line, why", [
    (b"# HELP hailo_ollama_up x\r\nhailo_ollama_up 1\n", 1, "byte 0x0d"),
    (b"hailo_ollama_up 1\rnode_x 2\n", 1, "byte 0x0d"),
    (b"hailo_ollama_up 1\nhailo_ollama_x{model=\"qwen\xc3\xa9\"} 1\n", 2, "byte 0xc3"),
    (b"# HELP hailo_ollama_up caf\xc3\xa9\n", 1, "byte 0xc3"),
    (b"hailo_ollama_up 1 1700000000000\n", 1, "metric line; nothing"),
    (b"hailo_ollama_up 1\n\nhailo_ollama_up 1\n", 2, "metric line; nothing"),
    (b"# TYPE hailo_ollama_up gauge extra\n", 1, "metric line; nothing"),
    (b"# a comment\n", 1, "metric line; nothing"),
    (b'hailo_ollama_x{model="a"b"} 1\n', 1, "metric line; nothing"),
    (b"hailo_ollama_up one\n", 1, "metric line; nothing")])
def test_publish_refuses_any_byte_or_line_outside_our_exposition_naming_file_and_line(written, content, line, why):
    source, target = written
    source.write_bytes(content)
    with pytest.raises(WriteError) as refused:
        publish.publish(source, target)
    message = str(refused.value)
    assert message.startswith(f"{source}:{line}: not a hailo_ollama_ metric line") and why in message
    assert message.endswith("nothing published") and os.listdir(target) == []


def test_publish_accepts_what_exposition_writes_labels_escapes_and_all(written):
    source, target = written
    fam = metrics.Family("hailo_ollama_x", "gauge", 'say "hi"\\now\u00b0C').add(1.5e-7, model='a"b\\c\nd\u00e9\x1b')
    text = metrics.exposition([fam, metrics.Family("hailo_ollama_y", "counter", "n").add(3).add(4, kind="x")])
    assert all(" " <= c <= "~" for c in text.replace("\n", ""))
    source.write_text(text)
    assert publish.publish(source, target)
    assert (target / "hailo-ollama.prom").read_text() == text


def test_publish_never_follows_a_link_or_opens_a_fifo_or_reads_a_huge_file(written, tmp_path):
    source, target = written
    secret = write(tmp_path / "secret", "hailo_ollama_up 1\n")
    source.unlink()
    source.symlink_to(secret)
    with pytest.raises(Unsafe):
        publish.publish(source, target)
    source.unlink()
    os.mkfifo(source)
    with pytest.raises(Unsafe):
        publish.publish(source, target)
    source.unlink()
    with open(source, "wb") as handle:
        handle.truncate(4 << 30)
    with pytest.raises(Unsafe):
        publish.publish(source, target)
    assert os.listdir(target) == []


def test_publish_refuses_a_textfile_directory_that_is_a_link(written, tmp_path):
    source, target = written
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.rmdir()
    target.symlink_to(elsewhere)
    with pytest.raises(Unsafe):
        publish.publish(source, target)
    assert os.listdir(elsewhere) == []


def test_unpublish_removes_only_our_file_and_tolerates_its_absence(written, tmp_path):
    source, target = written
    publish.publish(source, target)
    write(target / "node.prom", "node_x 1\n")
    assert publish.unpublish(target) and not publish.unpublish(target)
    assert os.listdir(target) == ["node.prom"]
    assert not publish.unpublish(tmp_path / "no-node-exporter")
