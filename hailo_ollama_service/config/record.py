"""Root's record of the last good settings, and what the server serves.

The record lives in /var/lib/hailo-ollama-service/state.json, a root-owned
directory and file that every user may read (the served address is no
secret: it comes from the world-readable /etc/hailo) and only root may
write (``root.render`` does). A file that anyone else could have written is
ignored. The service user's tree is never read: when root has no record
yet, the last good settings are rebuilt from root's own rendered files
(``outputs.recover``).
"""

from __future__ import annotations

import json
from typing import Any

from hailo_ollama_service.config import load
from hailo_ollama_service.config.outputs import recover
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.config.schema import Value, validated
from hailo_ollama_service.fs.atomic import ensure_dir, write_atomic
from hailo_ollama_service.stamp import read_private


def read(paths: Paths) -> dict[str, Any]:
    """Return root's bookkeeping; {} when absent, unreadable or not trustworthy
    (see stamp.read_private: no link, no FIFO, size bound, writable by
    root or us only)."""
    text = read_private(str(paths.book))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def write(paths: Paths, data: dict[str, Any]) -> bool:
    """Store root's bookkeeping atomically (dir 0755, file 0644); True when it changed."""
    ensure_dir(paths.book_dir, 0o755)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_atomic(paths.book, text.encode(), 0o644)


def last_good(book: dict[str, Any]) -> dict[str, Value] | None:
    """The last good settings recorded in ``book`` (schema-checked), or None."""
    last = book.get("last_good")
    return validated(last) if isinstance(last, dict) else None


def last_good_or_recovered(paths: Paths, book: dict[str, Any]) -> dict[str, Value] | None:
    """Root's record of the last good settings in ``book``, else what root's rendered files say."""
    return last_good(book) or recover(paths)


def served_values(paths: Paths) -> dict[str, Value]:
    """The settings the server was last rendered with (what it serves).

    Returns root's last good settings when there are any and the JSON
    exists, else the effective settings; raises ConfigError when neither
    exists.
    """
    last = last_good(read(paths))
    if last is not None and paths.upstream_json.exists():
        return last
    return load.load(paths).values
