"""What doctor (as root) reads from the service user's model tree: its manifests.

The tree belongs to the service user, which is hostile: it is walked by fd
without following a link at any level, bounded in depth and entries
(nofollow.walk_files); each manifest is read up to LIMIT bytes and parsed
with a size and depth bound (untrusted.loads), so a planted, deeply nested
``manifest.json`` is a problem to report, never a crash (RecursionError).
Names found there are escaped (untrusted.shown) before they are quoted.
"""

from __future__ import annotations

from hailo_ollama_service import untrusted
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.fs import nofollow

LIMIT = 1 << 20
MOST = 200
SIZE_KEYS = ("size", "blob_size", "hef_size")


def listed(paths: Paths) -> list[str]:
    """Take the paths; return the regular ``manifest.json`` files below
    models/manifests as relative paths ([] when the tree is missing or odd)."""
    try:
        with nofollow.opened_dir(paths.state_dir, "models/manifests") as fd:
            return [rel for rel, what in nofollow.walk_files(fd)
                    if what == "file" and rel.rsplit("/", 1)[-1] == "manifest.json"]
    except OSError:
        return []


def largest(paths: Paths) -> tuple[int, list[str]]:
    """Take the paths; return (the largest size a manifest names, 0 if none;
    one escaped ``path: why`` per manifest that could not be read or parsed).

    Reads at most MOST manifests. Raises nothing for what the tree holds.
    """
    size = 0
    problems: list[str] = []
    for rel in listed(paths)[:MOST]:
        parts = rel.split("/")
        try:
            with nofollow.opened_dir(paths.state_dir, "/".join(["models", "manifests", *parts[:-1]])) as fd:
                doc = untrusted.loads(nofollow.read_regular(fd, parts[-1], LIMIT) or b"", LIMIT)
        except (OSError, ValueError) as err:
            problems.append(f"{untrusted.shown(rel, 120)}: {untrusted.shown(err, 120)}")
            continue
        for key in SIZE_KEYS:
            value = doc.get(key) if isinstance(doc, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                size = max(size, value)
    return size, problems


__all__ = ["listed", "largest", "LIMIT", "MOST"]
