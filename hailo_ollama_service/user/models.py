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

A kiosk's allowlist (``models.allowed``, which root's render passes to the
unit as ``$HAILO_OLLAMA_SERVICE_MODELS``) is applied here: only upstream's
manifests of allowed models are mirrored, so the server never sees the
others. Upstream names the manifest ``<dir>/<model>/<tag>/manifest.json``
``model:tag`` (the two folders above the file, at any depth) and looks a
name up exactly: it has no default tag, so ``qwen2`` never means
``qwen2:latest`` there. Here a bare name allows every tag of that model,
and ``name:tag`` (``latest`` included) that one tag only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
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


def _drop_one(manifests_fd: int, where: Path, rel: str, digest: str, why: str) -> Changes:
    """Remove the mirrored copy at ``rel`` if it is still what the mirror
    wrote (``digest``); ``why`` it goes ends its warnings."""
    parts = nofollow.split(rel)
    target = where / rel
    try:
        dir_fd = nofollow.open_dir(manifests_fd, parts[:-1], where)
    except FileNotFoundError:
        return [], []
    except nofollow.Unsafe as err:
        return [], [f"{err}; {rel} ({why}) left as it is"]
    try:
        try:
            current = nofollow.read_regular(dir_fd, MANIFEST_NAME, MANIFEST_LIMIT, target.parent)
        except nofollow.Unsafe as err:
            return [], [f"{err}; {why}, left as it is"]
        if current is None:
            return [], []
        if _digest(current) != digest:
            return [], [f"{target}: changed locally; {why}, so it is left as it is"]
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


def model_tag(where: Path, rel: str) -> tuple[str, str]:
    """Upstream's (model, tag) of the manifest at ``rel`` below ``where``
    (models/manifests): the names of the two folders above the file, as
    upstream's model store takes them (``qwen2/1.5b/manifest.json`` is
    qwen2:1.5b; ``x/manifest.json`` is manifests:x)."""
    folder = (where / rel).parent
    return folder.parent.name, folder.name


def allows(allowed: Sequence[str], model: str, tag: str) -> bool:
    """True when the allowlist (empty: every model) offers ``model:tag``:
    a bare name allows each of its tags, ``name:tag`` just that tag."""
    return not allowed or any(name == (f"{model}:{tag}" if ":" in name else model) for name in allowed)


def _unknown(allowed: Sequence[str], names: set[tuple[str, str]]) -> list[str]:
    """A warning for each allowed name that none of upstream's manifests (``names``) matches."""
    return [f"models.allowed names {name!r}, which no manifest in hailo-gen-ai-model-zoo has "
            "(a typo? a model added by hand is never filtered)"
            for name in dict.fromkeys(allowed) if not any(allows([name], *found) for found in names)]


def mirror(paths: Paths, state_fd: int, record: dict[str, str],
           allowed: Sequence[str] = ()) -> tuple[list[str], list[str], list[str]]:
    """Bring the mirrored manifests in line with upstream's and the allowlist.

    Takes the Paths, the state dir's fd, the record (updated in place) and
    the kiosk allowlist (model names, ``name`` or ``name:tag``; empty:
    every model, see ``allows``). Adds and updates upstream's manifests of
    allowed models; removes the copies it made earlier of those upstream
    dropped or the allowlist now leaves out, but only while unchanged. It
    never touches a file it did not copy (a model the admin added by hand
    stays, allowed or not) or a pulled blob, and leaves anything odd (a
    link, a FIFO, a huge file) where it is with a warning. Returns (changed
    paths, warnings, notes): notes name allowed models that upstream does
    not ship, see sync.
    """
    changed: list[str] = []
    warnings: list[str] = []
    where = paths.manifests_dir
    shipped = upstream_manifests(paths.upstream_manifests)
    names = {model_tag(where, rel) for rel in shipped}
    wanted = {rel: data for rel, data in shipped.items() if allows(allowed, *model_tag(where, rel))}
    manifests_fd = nofollow.open_dir(state_fd, ["models", "manifests"], paths.state_dir)
    try:
        for rel, data in sorted(wanted.items()):
            more, warned = _mirror_one(manifests_fd, where, rel, data, record)
            changed += more
            warnings += warned
        for rel in sorted(set(record) - set(wanted)):
            why = "models.allowed leaves it out" if rel in shipped else "upstream dropped it"
            more, warned = _drop_one(manifests_fd, where, rel, record.pop(rel), why)
            changed += more
            warnings += warned
    finally:
        os.close(manifests_fd)
    return changed, warnings, _unknown(allowed, names)


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


def sync(paths: Paths, allowed: Sequence[str] = (), lock_wait: float = LOCK_WAIT) -> Changes:
    """The service user's step: layout, mirror and record, under a lock.

    Takes the Paths, the kiosk allowlist (model names; empty: every model,
    see mirror) and how long to wait for another sync's lock. Returns
    (changed paths, warnings). Raises FileNotFoundError when the state dir
    is missing, nofollow.Unsafe when a link or a file is where a directory
    of the layout belongs, WriteError when writing fails.
    """
    state_fd = nofollow.open_base(paths.state_dir)
    try:
        _lock(state_fd, paths.state_dir, lock_wait)
        nofollow.unlink_at(state_fd, paths.sync_stamp.name)
        inputs = (stamp.package_lines() + stamp.tree_lines(str(paths.upstream_manifests))
                  + [stamp.stat_line(str(paths.env_file))])
        changed = ensure_layout(paths, state_fd)
        record, more, warnings = read_record(paths, state_fd)
        changed += more
        more, warned, notes = mirror(paths, state_fd, record, allowed)
        changed += more
        warnings += warned
        write_record(paths, state_fd, record)
        # An allowed name that upstream does not ship is told once, and does
        # not keep the stamp away: the tree is complete, another sync of the
        # same inputs would only repeat it, and any change that could cure
        # it (the allowlist, root's environment file, upstream's manifests)
        # is in the stamp and takes the full path again. A warning about the
        # tree (a link, a locally changed copy) does keep it away.
        if not warnings:
            _write_stamp(paths, state_fd, inputs, ",".join(allowed))
        return changed, warnings + notes
    finally:
        os.close(state_fd)


def _write_stamp(paths: Paths, state_fd: int, inputs: list[str], allowed: str) -> None:
    """Record a clean sync for the fast path (stamp.sync_unchanged): the
    allowlist applied (names joined by ","), the upstream manifests and
    root's environment file as read, the service user's models tree and
    record as left. Not while a stamped file is too young for its times to tell."""
    lines = inputs + stamp.tree_lines(str(paths.models_dir)) + [stamp.stat_line(str(paths.mirror_record))]
    if not stamp.young(lines):
        text = stamp.stamp_text(SYNC_HEADER, stamp.sync_kind(allowed), lines)
        nofollow.write_at(state_fd, paths.sync_stamp.name, text.encode(), 0o644, paths.state_dir)


def sync_here(paths: Paths, allowed: Sequence[str] = ()) -> tuple[list[str], list[str], str | None]:
    """Run the service user's step in this process, which must not be root.

    Root never runs this step, nor anything else as the service user: a
    process of that uid outside the server's sandbox could be taken over by
    the server through /proc/PID/mem. Root restarts the unit instead, whose
    main process (``serve``) runs this step inside the sandbox. Takes the
    Paths and the kiosk allowlist (see sync). Returns (changed paths,
    warnings, error or None); as root only the error.
    """
    if os.geteuid() == 0:
        return [], [], (f"sync-models runs as the service user only; as root run: systemctl restart {UNIT} "
                        "(its start mirrors the manifests inside the sandbox)")
    try:
        changed, warnings = sync(paths, allowed)
    except FileNotFoundError:
        return [], [], f"{paths.state_dir}: no such directory (the first start of {UNIT} makes it)"
    except (nofollow.Unsafe, WriteError) as err:
        return [], [], str(err)
    except OSError as err:
        return [], [], f"{paths.state_dir}: {err.strerror or err}"
    return changed, warnings, None


__all__ = ["WriteError", "sync", "sync_here", "mirror", "ensure_layout", "upstream_manifests"]
