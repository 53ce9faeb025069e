"""Upstream's shipped manifests (root-owned, below /usr/share): reading them, and their digest.

Root's render records the digest, so that a change of Hailo's package
try-restarts the server; the service user's start (``user.models``) mirrors
what this reads into the data directory that upstream 5.1 reads.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hailo_ollama_service.fs import nofollow

MANIFEST_NAME = "manifest.json"
MANIFEST_LIMIT = 1 << 20


def upstream_manifests(source: Path) -> dict[str, bytes]:
    """Read every ``manifest.json`` below ``source`` (root-owned /usr/share).

    Symlinked directories are not entered, links and oversized files are
    skipped. Returns relative path -> content; {} when ``source`` is missing.
    """
    found: dict[str, bytes] = {}
    if not source.is_dir():
        return found
    for directory, _dirs, files in os.walk(source, followlinks=False):
        if MANIFEST_NAME not in files:
            continue
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            data = nofollow.read_regular(fd, MANIFEST_NAME, MANIFEST_LIMIT, directory)
        except nofollow.Unsafe:
            data = None
        finally:
            os.close(fd)
        if data is not None:
            found[str(Path(directory, MANIFEST_NAME).relative_to(source))] = data
    return found


def manifests_digest(source: Path) -> str:
    """The sha256 of upstream's manifests below ``source``: every relative
    path and its content's hash, in order."""
    digest = hashlib.sha256()
    for rel, data in sorted(upstream_manifests(source).items()):
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()
