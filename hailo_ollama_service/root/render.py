"""Root's render: the settings into every file the server and systemd read.

Runs as root. Outputs: the upstream 5.1 JSON, the 5.3 environment file, a
systemd drop-in with the resource limits (their bytes: ``config.outputs``),
and root's own bookkeeping (``config.record``: the last good settings, and
a digest of upstream's manifests). Nothing here reads or writes the service
user's tree, or runs anything as that user: its layout and manifest mirror
are the server's own start step (``user.serve``, inside the sandbox), so
when upstream's manifests change, ``root.apply`` restarts the server.
Writes are atomic and skipped when unchanged; invalid settings write
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hailo_ollama_service.config import load, record
from hailo_ollama_service.config.outputs import dropin, environment, line_value, upstream_json
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.config.schema import Value, server_listen
from hailo_ollama_service.config.upstream import manifests_digest
from hailo_ollama_service.fs.atomic import ensure_dir, locked, remove_file, write_atomic
from hailo_ollama_service.root import front


@dataclass
class Result:
    """What a render did: changed outputs, warnings, and a kept-last-good error."""

    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    dropin_changed: bool = False
    keep_changed: bool = False
    front_changed: list[str] = field(default_factory=list)
    front_on: bool = False
    keys_before: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @property
    def server_affected(self) -> bool:
        """True when the server must restart to see the change."""
        return bool(self.changed)


def _write_outputs(paths: Paths, values: dict[str, Value], result: Result) -> None:
    """Write JSON, env and drop-in; record changes in ``result``. The text of
    all three is made (and checked) before the first is written."""
    outputs = [(paths.upstream_json, upstream_json(values)), (paths.env_file, environment(values)),
               (paths.dropin, dropin(values))]
    for path, data in outputs:
        ensure_dir(path.parent)
        if write_atomic(path, data):
            result.changed.append(str(path))
            result.dropin_changed |= path == paths.dropin
    # warmup.keep_loaded: a flag in root's bookkeeping, the condition of
    # hailo-ollama-keepwarm.timer (the server itself is not affected).
    ensure_dir(paths.keep_flag.parent)
    if values["warmup.keep_loaded"] and values["warmup.model"]:
        result.keep_changed = write_atomic(paths.keep_flag, b"warmup.keep_loaded is on\n")
    else:
        result.keep_changed = remove_file(paths.keep_flag)


def render(paths: Paths, keep_last_good: bool = False) -> Result:
    """Render root's outputs from the settings under ``paths``.

    Takes the Paths and whether invalid settings may fall back to the last
    good outputs. Returns a Result. Raises ConfigError for invalid settings
    (nothing written) unless keep_last_good and earlier outputs exist, and
    WriteError when a file cannot be written or a value is unfit for it.
    """
    result = Result()
    with locked(paths.lock_file):
        book = record.read(paths)
        try:
            effective = load.load(paths)
            files = front.prepare(paths, effective.values)
        except load.ConfigError as err:
            if not keep_last_good:
                raise
            last = record.last_good_or_recovered(paths, book)
            if not (paths.upstream_json.exists() and paths.dropin.exists() and last is not None):
                raise load.ConfigError(err.where, f"{err.message}; and there is no earlier good "
                                           "configuration to keep", err.line, err.key) from None
            result.error = f"{err}; keeping the last good configuration"
            if not paths.env_file.exists():  # /run is empty after a reboot
                ensure_dir(paths.env_file.parent)
                write_atomic(paths.env_file, environment(last))
                result.changed.append(str(paths.env_file))
            book["last_good"] = last
            result.front_on = bool(last["access.enabled"]) and paths.front_config.exists()
        else:
            _write_outputs(paths, effective.values, result)
            book["last_good"] = effective.values
            result.keys_before = front.read_map(paths)
            result.front_changed = front.write(paths, files)
            result.front_on = files is not None
            result.sources = list(files.sources) if files else []
        # The server mirrors upstream's manifests when it starts: a start
        # after this render sees these; a running server needs a restart
        # when they differ from those of the last render (apply).
        manifests = manifests_digest(paths.upstream_manifests)
        if book.get("manifests") != manifests:
            book["manifests"] = manifests
            result.changed.append(str(paths.upstream_manifests))
        record.write(paths, book)
        host, port = server_listen(book["last_good"])
        address = f"{line_value('server.host', host)} {line_value('server.port', port)}\n"
        write_atomic(paths.served, address.encode())
    return result
