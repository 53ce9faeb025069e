"""Where every file of the service lives, optionally below a scratch root.

Nothing else in the package spells out a system path: functions receive a
``Paths`` and tests build one below a temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hailo_ollama_service import constants as c


@dataclass(frozen=True)
class Paths:
    """Every path the package reads or writes, already joined with the root.

    ``state_dir`` and everything below it belong to the service user (it can
    write them, so root never trusts them); ``book_dir`` is root's own
    bookkeeping, which the service user can read but not write.
    """

    root: Path
    conffile: Path
    layer_dir: Path
    debconf_layer: Path
    upstream_json: Path
    env_file: Path
    dropin: Path
    state_dir: Path
    mirror_record: Path
    sync_stamp: Path
    legacy_state: Path
    book_dir: Path
    book: Path
    stamp: Path
    served: Path
    keep_flag: Path
    keep_state: Path
    upstream_manifests: Path
    lock_file: Path
    keys_file: Path
    access_dir: Path
    haproxy: Path

    @property
    def models_dir(self) -> Path:
        """The upstream data directory's ``models/`` folder."""
        return self.state_dir / "models"

    @property
    def manifests_dir(self) -> Path:
        """Where the server reads manifests (the mirror target)."""
        return self.models_dir / "manifests"

    @property
    def front_config(self) -> Path:
        """HAProxy's configuration of the access front."""
        return self.access_dir / "haproxy.cfg"

    @property
    def blob_dir(self) -> Path:
        """Where pulled model blobs land."""
        return self.models_dir / "blob"


def make_paths(root: str | os.PathLike[str] | None = None,
               environ: dict[str, str] | None = None) -> Paths:
    """Build the ``Paths`` for a root directory.

    Takes the root (default: ``$HAILO_OLLAMA_ROOT`` or ``/``) and an
    environment mapping (default ``os.environ``) in which
    ``HAILO_OLLAMA_CONFIG`` may name another conffile. Returns ``Paths``.
    """
    env = os.environ if environ is None else environ
    base = Path(root if root is not None else env.get("HAILO_OLLAMA_ROOT") or "/")

    conffile = Path(env["HAILO_OLLAMA_CONFIG"]) if env.get("HAILO_OLLAMA_CONFIG") else base / c.CONFFILE_REL
    layer_dir = base / c.LAYER_DIR_REL
    state_dir = base / c.STATE_REL
    book_dir = base / c.BOOK_REL
    return Paths(
        root=base,
        conffile=conffile,
        layer_dir=layer_dir,
        debconf_layer=layer_dir / c.DEBCONF_LAYER_NAME,
        upstream_json=base / c.UPSTREAM_JSON_REL,
        env_file=base / c.ENV_FILE_REL,
        dropin=base / c.DROPIN_REL,
        state_dir=state_dir,
        mirror_record=state_dir / c.MIRROR_RECORD_NAME,
        sync_stamp=state_dir / c.SYNC_STAMP_NAME,
        legacy_state=state_dir / c.LEGACY_STATE_NAME,
        book_dir=book_dir,
        book=book_dir / c.BOOK_NAME,
        stamp=book_dir / c.STAMP_NAME,
        served=book_dir / c.SERVED_NAME,
        keep_flag=book_dir / c.KEEP_FLAG_NAME,
        keep_state=state_dir / c.KEEP_STATE_NAME,
        upstream_manifests=base / c.UPSTREAM_MANIFESTS_REL,
        lock_file=base / c.LOCK_FILE_REL,
        keys_file=book_dir / c.KEYS_NAME,
        access_dir=base / c.ACCESS_DIR_REL,
        haproxy=base / c.HAPROXY_REL,
    )
