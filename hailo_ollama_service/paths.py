"""Where every file of the service lives, optionally below a scratch root.

Nothing else in the package spells out a system path: functions receive a
``Paths`` and tests build one below a temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hailo_ollama_service import fastpath

UNIT = "hailo-ollama.service"
SERVICE_USER = "hailo-ollama"
# node_exporter's textfile directory (Debian's default) and where the
# metrics unit's unprivileged step leaves its file (its RuntimeDirectory=)
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS_OUTPUT = "/run/hailo-ollama-metrics/hailo-ollama.prom"


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

    @property
    def models_dir(self) -> Path:
        """The upstream data directory's ``models/`` folder."""
        return self.state_dir / "models"

    @property
    def manifests_dir(self) -> Path:
        """Where the server reads manifests (the mirror target)."""
        return self.models_dir / "manifests"

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

    def at(p: str) -> Path:
        return base / p.lstrip("/")

    conffile = Path(env["HAILO_OLLAMA_CONFIG"]) if env.get("HAILO_OLLAMA_CONFIG") else at("/etc/hailo/hailo-ollama.yaml")
    layer_dir = at("/etc/hailo/hailo-ollama.d")
    state_dir = at(fastpath.STATE_REL)
    return Paths(
        root=base,
        conffile=conffile,
        layer_dir=layer_dir,
        debconf_layer=layer_dir / "00-debconf.yaml",
        upstream_json=at("/etc/xdg/hailo-ollama/hailo-ollama.json"),
        env_file=at("/run/hailo-ollama/hailo-ollama.env"),
        dropin=at("/etc/systemd/system/hailo-ollama.service.d/50-hailo-ollama-service.conf"),
        state_dir=state_dir,
        mirror_record=state_dir / "mirror-state.json",
        sync_stamp=state_dir / fastpath.SYNC_STAMP_NAME,
        legacy_state=state_dir / "render-state.json",
        book_dir=at(fastpath.BOOK_REL),
        book=at(fastpath.BOOK_REL) / "state.json",
        stamp=at(fastpath.BOOK_REL) / fastpath.STAMP_NAME,
        served=at(fastpath.BOOK_REL) / fastpath.SERVED_NAME,
        keep_flag=at(fastpath.BOOK_REL) / "keep-loaded",
        keep_state=state_dir / "keep-warm-state.json",
        upstream_manifests=at("/usr/share/hailo-ollama/models/manifests"),
        lock_file=at("/run/hailo-ollama/render.lock"),
    )
