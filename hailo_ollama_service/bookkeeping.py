"""Root's own bookkeeping: the last good settings, outside the service user's reach.

It lives in /var/lib/hailo-ollama-service/state.json, a root-owned directory
and file that every user may read (the served address is no secret: it comes
from the world-readable /etc/hailo) and only root may write. A file that
anyone else could have written is ignored. The 1.0.0 bookkeeping in the
service user's tree is never read: when root has no record yet, the last
good settings are rebuilt from root's own rendered files.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hailo_ollama_service.fastpath import read_private
from hailo_ollama_service.fsutil import ensure_dir, write_atomic
from hailo_ollama_service.paths import Paths
from hailo_ollama_service.schema import BY_KEY, DEFAULTS, SettingError, Value

def read(paths: Paths) -> dict[str, Any]:
    """Return root's bookkeeping; {} when absent, unreadable or not trustworthy
    (see fastpath.read_private: no link, no FIFO, size bound, writable by
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


def _validated(values: dict[str, object]) -> dict[str, Value] | None:
    """Defaults overlaid with ``values``, each checked by the schema; None if one fails."""
    out = dict(DEFAULTS)
    try:
        for key, value in values.items():
            if key in BY_KEY:
                out[key] = BY_KEY[key].check(value)
    except SettingError:
        return None
    return out


def last_good(book: dict[str, Any]) -> dict[str, Value] | None:
    """The last good settings recorded in ``book`` (schema-checked), or None."""
    last = book.get("last_good")
    return _validated(last) if isinstance(last, dict) else None


def recover(paths: Paths) -> dict[str, Value] | None:
    """Rebuild the last good settings from root's rendered files.

    For an upgrade from 1.0.0, whose record lay in the service user's tree:
    the JSON gives address, library and poll period, the drop-in the
    resource limits, the environment file (while it exists) the device
    group. warmup.model is not rendered anywhere and comes back empty.
    Returns the settings, or None when the JSON is missing or unusable.
    """
    text = read_private(str(paths.upstream_json))
    try:
        doc = json.loads(text) if text else None
        values: dict[str, object] = {
            "server.host": doc["server"]["host"], "server.port": doc["server"]["port"],
            "library.host": doc["library"]["host"], "library.port": doc["library"]["port"],
            "main_poll_time_ms": doc["main_poll_time_ms"]}
    except (TypeError, KeyError, ValueError):
        return None
    dropin = read_private(str(paths.dropin)) or ""
    for key, name in (("resource_limits.memory_max", "MemoryMax"), ("resource_limits.cpu_quota", "CPUQuota")):
        match = re.search(rf"^{name}=(.*)$", dropin, re.M)
        if match:
            values[key] = match.group(1).strip() or "infinity"
    env = read_private(str(paths.env_file)) or ""
    match = re.search(r"^HAILO_OLLAMA_VDEVICE_GROUP_ID=(.*)$", env, re.M)
    if match:
        values["device.group_id"] = match.group(1).strip()
    return _validated(values)
