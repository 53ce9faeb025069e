"""The server's data directory: layout, ownership and the manifest mirror.

Upstream 5.1 reads manifests only from its one data directory, so the
manifests that the upstream package ships in /usr/share are copied into
/var/lib/hailo-ollama/models/manifests. Bookkeeping of what was copied lives
in render-state.json beside ``models/``: the server aborts on any stray file
under ``models/manifests``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
from pathlib import Path
from typing import Any

from hailo_ollama_service.fsutil import WriteError, ensure_dir, remove_file, write_atomic
from hailo_ollama_service.paths import SERVICE_USER, Paths

MANIFEST_NAME = "manifest.json"


def service_owner(user: str = SERVICE_USER) -> tuple[int, int] | None:
    """Return (uid, gid) of the service user when running as root, else None.

    None means "leave ownership alone" (non-root runs, or no such user yet).
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def read_state(paths: Paths) -> dict[str, Any]:
    """Return the bookkeeping in render-state.json ({} if absent or unreadable)."""
    try:
        with open(paths.render_state, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(paths: Paths, data: dict[str, Any]) -> bool:
    """Store the bookkeeping atomically; return True when it changed."""
    ensure_dir(paths.state_dir)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_atomic(paths.render_state, text.encode(), 0o644)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upstream_manifests(source: Path) -> dict[str, bytes]:
    """Read every ``manifest.json`` below ``source`` (no symlinked dirs).

    Returns relative path -> content; {} when ``source`` does not exist.
    """
    found: dict[str, bytes] = {}
    if not source.is_dir():
        return found
    for directory, _dirs, files in os.walk(source, followlinks=False):
        for name in files:
            if name != MANIFEST_NAME:
                continue
            full = Path(directory) / name
            if not full.is_file():
                continue
            found[str(full.relative_to(source))] = full.read_bytes()
    return found


def ensure_layout(paths: Paths, owner: tuple[int, int] | None) -> list[str]:
    """Create state_dir/models/{manifests,blob} owned by the service user.

    Returns the paths that changed; raises WriteError.
    """
    changed = []
    for directory in (paths.state_dir, paths.models_dir, paths.manifests_dir, paths.blob_dir):
        if ensure_dir(directory, 0o755, owner):
            changed.append(str(directory))
    return changed


def mirror(paths: Paths, record: dict[str, str], owner: tuple[int, int] | None) -> tuple[list[str], list[str]]:
    """Bring the mirrored manifests in line with upstream's.

    Takes the Paths, the record of earlier copies (relative path -> sha256;
    updated in place) and the owner. Adds and updates upstream's manifests,
    removes those upstream dropped, and never touches a file it did not copy
    (a model the admin added) or a pulled blob. Returns (changed paths,
    warnings); raises WriteError.
    """
    changed: list[str] = []
    warnings: list[str] = []
    wanted = upstream_manifests(paths.upstream_manifests)
    for rel, data in sorted(wanted.items()):
        target = paths.manifests_dir / rel
        digest = _digest(data)
        if target.exists() and rel not in record:
            if _digest(target.read_bytes()) != digest:
                warnings.append(f"{target}: not created by hailo-ollama-service; left as it is")
                continue
        parent = target.parent
        missing = []
        while parent != paths.manifests_dir and not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            ensure_dir(directory, 0o755, owner)
        if write_atomic(target, data, 0o644, owner):
            changed.append(str(target))
        record[rel] = digest
    for rel in sorted(set(record) - set(wanted)):
        target = paths.manifests_dir / rel
        try:
            current = target.read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None:
            if _digest(current) != record[rel]:
                warnings.append(f"{target}: changed locally; upstream dropped it, so it is left as it is")
            elif remove_file(target):
                changed.append(str(target))
                _prune_empty(target.parent, paths.manifests_dir)
        del record[rel]
    return changed, warnings


def _prune_empty(directory: Path, stop: Path) -> None:
    """Remove now-empty directories from ``directory`` up to (not incl.) ``stop``."""
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def sync(paths: Paths, owner: tuple[int, int] | None, state: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Create the layout and refresh the mirror; ``state`` is updated in place.

    Returns (changed paths, warnings); raises WriteError.
    """
    changed = ensure_layout(paths, owner)
    record = state.setdefault("mirrored", {})
    if not isinstance(record, dict):
        record = state["mirrored"] = {}
    more, warnings = mirror(paths, record, owner)
    return changed + more, warnings


__all__ = ["WriteError", "service_owner", "read_state", "write_state", "sync", "mirror", "ensure_layout"]
