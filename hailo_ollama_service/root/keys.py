"""Root's store of API keys: names, roles and SHA-256 digests, never a key.

``/var/lib/hailo-ollama-service/api-keys.json`` (root, 0600) holds one
entry per key: its name, its role (``user`` or ``admin``), the lowercase
hex SHA-256 of the key and when it was added. A new key is made here from
the system's random source, returned once for the admin to copy, and only
its digest is stored; a fleet can install a digest made elsewhere. The
access front's map (``config.access.keys_map``) is rendered from this file
by ``root.front``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass

from hailo_ollama_service.config.access import ROLES
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.fs.atomic import ensure_dir, write_atomic
from hailo_ollama_service.stamp import read_private

PREFIX = "hos_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
DIGEST = re.compile(r"[0-9a-f]{64}")


class KeyError_(ValueError):  # noqa: N801 (KeyError is the builtin; this is a refused key)
    """A refused key operation; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class Key:
    """One stored key: name, role, SHA-256 hex digest, and when it was added (UTC, ISO 8601)."""

    name: str
    role: str
    sha256: str
    created: str


def digest(key: str) -> str:
    """Return the lowercase hex SHA-256 of ``key``, as HAProxy's ``sha2(256),hex,lower`` computes it."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """Return a new key: ``hos_`` and 256 random bits in URL-safe base64."""
    return PREFIX + secrets.token_urlsafe(32)


def load(paths: Paths) -> list[Key]:
    """Return the stored keys, in name order; [] when there is no store.

    Raises KeyError_ when the store exists but is unreadable, not root's
    own (see stamp.read_private) or malformed: root then changes nothing.
    """
    if not paths.keys_file.exists() and not paths.keys_file.is_symlink():
        return []
    text = read_private(str(paths.keys_file))
    if text is None:
        raise KeyError_(f"{paths.keys_file}: unreadable, a link or not written by root only; "
                        "refusing to use it")
    try:
        entries = json.loads(text)["keys"]
        keys = [Key(e["name"], e["role"], e["sha256"], e["created"]) for e in entries]
    except (ValueError, TypeError, KeyError):
        raise KeyError_(f"{paths.keys_file}: not a key store written by hailo-ollama-service") from None
    for key in keys:
        if not (isinstance(key.name, str) and NAME.fullmatch(key.name) and key.role in ROLES
                and isinstance(key.sha256, str) and DIGEST.fullmatch(key.sha256)
                and isinstance(key.created, str)):
            raise KeyError_(f"{paths.keys_file}: the entry {str(key.name)[:64]!r} is malformed")
    return sorted(keys, key=lambda k: k.name)


def save(paths: Paths, keys: list[Key]) -> bool:
    """Store ``keys`` atomically, readable by root only; True when the file changed."""
    ensure_dir(paths.book_dir, 0o755)
    doc = {"keys": [{"name": k.name, "role": k.role, "sha256": k.sha256, "created": k.created}
                    for k in sorted(keys, key=lambda k: k.name)]}
    return write_atomic(paths.keys_file, (json.dumps(doc, indent=2) + "\n").encode(), 0o600)


def check_name(name: str) -> str:
    """Return ``name`` if it may name a key (letters, digits, . _ @ -; up to 64); raise KeyError_."""
    if not NAME.fullmatch(name):
        raise KeyError_(f"key name {name[:80]!r}: use up to 64 letters, digits, '.', '_', '@' or '-', "
                        "starting with a letter or digit")
    return name


def add(paths: Paths, name: str, admin: bool, sha256: str | None = None) -> tuple[str | None, bool]:
    """Add a key named ``name`` with the role admin or user.

    Takes the Paths, the name, the role flag and, for a fleet, the hex
    SHA-256 of a key made elsewhere. Returns (the new key or None when a
    digest was given, whether the store changed). Adding the same digest
    and role under the same name again changes nothing. Raises KeyError_
    for a bad name or digest, or a name in use with another key or role.
    """
    check_name(name)
    role = "admin" if admin else "user"
    key = None
    if sha256 is None:
        key = new_key()
        sha256 = digest(key)
    elif not DIGEST.fullmatch(sha256.lower()):
        raise KeyError_(f"--sha256: expected 64 hex digits, the SHA-256 of the key, not {sha256[:80]!r}")
    sha256 = sha256.lower()
    keys = load(paths)
    for old in keys:
        if old.name == name:
            if key is None and old.sha256 == sha256 and old.role == role:
                return None, False
            raise KeyError_(f"a key named {name!r} exists ({old.role}); revoke it first: "
                            f"hailo-ollama-service keys revoke {name}")
        if old.sha256 == sha256:
            raise KeyError_(f"this key is stored already, as {old.name!r}")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save(paths, keys + [Key(name, role, sha256, created)])
    return key, True


def revoke(paths: Paths, name: str) -> None:
    """Remove the key named ``name``; raise KeyError_ when there is none."""
    keys = load(paths)
    kept = [k for k in keys if k.name != name]
    if len(kept) == len(keys):
        raise KeyError_(f"no key named {name[:80]!r} (see: hailo-ollama-service keys list)")
    save(paths, kept)
