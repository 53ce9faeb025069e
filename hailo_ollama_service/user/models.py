"""The service user's data directory: its layout and the manifest mirror.

Upstream 5.1 reads manifests only from its one data directory, so the
manifests that the upstream package ships in /usr/share are copied into
/var/lib/hailo-ollama/models/manifests. That tree belongs to the service
user, which the package treats as hostile (it runs network-facing C++), so
this work is done AS the service user, inside the server's sandbox: by the
unit's main process (``serve``, before it becomes the server), never by
root. Whatever the tree holds can then only hurt that user.

The record of what was mirrored (relative path -> sha256) lives in
``mirror-state.json`` beside ``models/``: upstream aborts on any stray file
under ``models/manifests``. Root never reads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from pathlib import Path

from hailo_ollama_service import stamp, untrusted
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.config.upstream import MANIFEST_LIMIT, MANIFEST_NAME, upstream_manifests
from hailo_ollama_service.constants import SYNC_HEADER, UNIT
from hailo_ollama_service.fs import nofollow
from hailo_ollama_service.fs.atomic import WriteError

RECORD_LIMIT = 4 << 20
LOCK_WAIT = 30.0
_DIGEST = re.compile(r"[0-9a-f]{64}")

Changes = tuple[list[str], list[str]]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _valid_record(data: object) -> dict[str, str]:
    """Keep the entries of a record that name a manifest inside the tree."""
    record: dict[str, str] = {}
    if not isinstance(data, dict):
        return record
    for rel, digest in data.items():
        try:
            parts = nofollow.split(rel) if isinstance(rel, str) else []
        except nofollow.Unsafe:
            continue
        if len(parts) >= 2 and parts[-1] == MANIFEST_NAME and isinstance(digest, str) and _DIGEST.fullmatch(digest):
            record[rel] = digest
    return record


def _read_json(state_fd: int, name: str, where: Path) -> tuple[object, str | None]:
    """(parsed JSON or None, warning or None) of ``name`` in the state dir."""
    try:
        data = nofollow.read_regular(state_fd, name, RECORD_LIMIT, where)
    except nofollow.Unsafe as err:
        return None, f"{err}; starting a new record"
    if data is None:
        return None, None
    try:
        return untrusted.loads(data, RECORD_LIMIT), None
    except ValueError as err:
        return None, f"{where}/{name}: {err}; starting a new record"


def read_record(paths: Paths, state_fd: int) -> tuple[dict[str, str], list[str], list[str]]:
    """Return (record, changed, warnings): the mirror's record, taken over
    from 1.0.0's ``render-state.json`` (then deleted) when there is none yet."""
    changed: list[str] = []
    warnings: list[str] = []
    doc, warning = _read_json(state_fd, paths.mirror_record.name, paths.state_dir)
    warnings += [warning] if warning else []
    record = _valid_record(doc.get("mirrored") if isinstance(doc, dict) else None)
    legacy_name = paths.legacy_state.name
    if nofollow.kind(state_fd, legacy_name) is not None:
        if doc is None:
            old, _ = _read_json(state_fd, legacy_name, paths.state_dir)
            record = _valid_record(old.get("mirrored") if isinstance(old, dict) else None)
        if nofollow.kind(state_fd, legacy_name) == "dir":
            warnings.append(f"{paths.legacy_state}: a directory; left as it is")
        elif nofollow.unlink_at(state_fd, legacy_name):
            changed.append(str(paths.legacy_state))
    return record, changed, warnings


def write_record(paths: Paths, state_fd: int, record: dict[str, str]) -> bool:
    """Store the record atomically; True when it changed."""
    text = json.dumps({"mirrored": record}, indent=2, sort_keys=True) + "\n"
    return nofollow.write_at(state_fd, paths.mirror_record.name, text.encode(), 0o644, paths.state_dir)


def ensure_layout(paths: Paths, state_fd: int) -> list[str]:
    """Create ``models/{manifests,blob}`` below the state dir when missing.

    Returns the directories created; raises Unsafe when a link or a file is
    where a directory belongs, WriteError when one cannot be made.
    """
    changed = []
    for parts in (["models"], ["models", "manifests"], ["models", "blob"]):
        with_parent = nofollow.open_dir(state_fd, parts[:-1], paths.state_dir)
        try:
            existed = nofollow.kind(with_parent, parts[-1]) is not None
        finally:
            os.close(with_parent)
        os.close(nofollow.open_dir(state_fd, parts, paths.state_dir, create=True))
        if not existed:
            changed.append(str(paths.state_dir.joinpath(*parts)))
    return changed


def _mirror_one(manifests_fd: int, where: Path, rel: str, data: bytes, record: dict[str, str]) -> Changes:
    parts = nofollow.split(rel)
    target = where / rel
    try:
        dir_fd = nofollow.open_dir(manifests_fd, parts[:-1], where, create=True)
    except (nofollow.Unsafe, WriteError) as err:
        return [], [f"{err}; {rel} not mirrored"]
    try:
        digest = _digest(data)
        if nofollow.kind(dir_fd, MANIFEST_NAME) is not None and rel not in record:
            try:
                current = nofollow.read_regular(dir_fd, MANIFEST_NAME, MANIFEST_LIMIT, target.parent)
            except nofollow.Unsafe as err:
                return [], [f"{err}; not created by hailo-ollama-service, left as it is"]
            if current is not None and _digest(current) != digest:
                return [], [f"{target}: not created by hailo-ollama-service; left as it is"]
        changed = [str(target)] if nofollow.write_at(dir_fd, MANIFEST_NAME, data, 0o644, target.parent) else []
        record[rel] = digest
        return changed, []
    finally:
        os.close(dir_fd)


def _drop_one(manifests_fd: int, where: Path, rel: str, digest: str) -> Changes:
    parts = nofollow.split(rel)
    target = where / rel
    try:
        dir_fd = nofollow.open_dir(manifests_fd, parts[:-1], where)
    except FileNotFoundError:
        return [], []
    except nofollow.Unsafe as err:
        return [], [f"{err}; {rel} left as it is"]
    try:
        try:
            current = nofollow.read_regular(dir_fd, MANIFEST_NAME, MANIFEST_LIMIT, target.parent)
        except nofollow.Unsafe as err:
            return [], [f"{err}; upstream dropped it, left as it is"]
        if current is None:
            return [], []
        if _digest(current) != digest:
            return [], [f"{target}: changed locally; upstream dropped it, so it is left as it is"]
        nofollow.unlink_at(dir_fd, MANIFEST_NAME)
    finally:
        os.close(dir_fd)
    for depth in range(len(parts) - 1, 0, -1):  # prune the folders it leaves empty
        parent = nofollow.open_dir(manifests_fd, parts[:depth - 1], where)
        try:
            os.rmdir(parts[depth - 1], dir_fd=parent)
        except OSError:
            break
        finally:
            os.close(parent)
    return [str(target)], []


def mirror(paths: Paths, state_fd: int, record: dict[str, str]) -> Changes:
    """Bring the mirrored manifests in line with upstream's.

    Takes the Paths, the state dir's fd and the record (updated in place).
    Adds and updates upstream's manifests, removes those upstream dropped,
    never touches a file it did not copy (a model the admin added) or a
    pulled blob, and leaves anything odd (a link, a FIFO, a huge file) where
    it is with a warning. Returns (changed paths, warnings).
    """
    changed: list[str] = []
    warnings: list[str] = []
    wanted = upstream_manifests(paths.upstream_manifests)
    manifests_fd = nofollow.open_dir(state_fd, ["models", "manifests"], paths.state_dir)
    try:
        for rel, data in sorted(wanted.items()):
            more, warned = _mirror_one(manifests_fd, paths.manifests_dir, rel, data, record)
            changed += more
            warnings += warned
        for rel in sorted(set(record) - set(wanted)):
            more, warned = _drop_one(manifests_fd, paths.manifests_dir, rel, record.pop(rel))
            changed += more
            warnings += warned
    finally:
        os.close(manifests_fd)
    return changed, warnings


def _lock(fd: int, where: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WriteError(f"{where}: another sync holds the lock for over {wait:g} s") from None
            time.sleep(0.05)


def sync(paths: Paths, lock_wait: float = LOCK_WAIT) -> Changes:
    """The service user's step: layout, mirror and record, under a lock.

    Returns (changed paths, warnings). Raises FileNotFoundError when the
    state dir is missing, nofollow.Unsafe when a link or a file is where a
    directory of the layout belongs, WriteError when writing fails.
    """
    state_fd = nofollow.open_base(paths.state_dir)
    try:
        _lock(state_fd, paths.state_dir, lock_wait)
        nofollow.unlink_at(state_fd, paths.sync_stamp.name)
        inputs = stamp.package_lines() + stamp.tree_lines(str(paths.upstream_manifests))
        changed = ensure_layout(paths, state_fd)
        record, more, warnings = read_record(paths, state_fd)
        changed += more
        more, warned = mirror(paths, state_fd, record)
        changed += more
        warnings += warned
        write_record(paths, state_fd, record)
        if not warnings:
            _write_stamp(paths, state_fd, inputs)
        return changed, warnings
    finally:
        os.close(state_fd)


def _write_stamp(paths: Paths, state_fd: int, inputs: list[str]) -> None:
    """Record a clean sync for the fast path (stamp.sync_unchanged): the
    upstream manifests as read, the service user's models tree and record as
    left. Not while a stamped file is too young for its times to tell."""
    lines = inputs + stamp.tree_lines(str(paths.models_dir)) + [stamp.stat_line(str(paths.mirror_record))]
    if not stamp.young(lines):
        text = stamp.stamp_text(SYNC_HEADER, "synced", lines)
        nofollow.write_at(state_fd, paths.sync_stamp.name, text.encode(), 0o644, paths.state_dir)


def sync_here(paths: Paths) -> tuple[list[str], list[str], str | None]:
    """Run the service user's step in this process, which must not be root.

    Root never runs this step, nor anything else as the service user: a
    process of that uid outside the server's sandbox could be taken over by
    the server through /proc/PID/mem. Root restarts the unit instead, whose
    main process (``serve``) runs this step inside the sandbox. Returns
    (changed paths, warnings, error or None); as root only the error.
    """
    if os.geteuid() == 0:
        return [], [], (f"sync-models runs as the service user only; as root run: systemctl restart {UNIT} "
                        "(its start mirrors the manifests inside the sandbox)")
    try:
        changed, warnings = sync(paths)
    except FileNotFoundError:
        return [], [], f"{paths.state_dir}: no such directory (the first start of {UNIT} makes it)"
    except (nofollow.Unsafe, WriteError) as err:
        return [], [], str(err)
    except OSError as err:
        return [], [], f"{paths.state_dir}: {err.strerror or err}"
    return changed, warnings, None


__all__ = ["WriteError", "sync", "sync_here", "mirror", "ensure_layout", "upstream_manifests"]
