"""Root's apply loop: render, try-restart the server after a change, stamp the result.

``render --try-restart`` (postinst, the dpkg trigger, the config path unit)
and the unit's own ``ExecStartPre=+`` (without it) run this. It re-renders
until the settings files stop changing underneath, starts or stops the
keep-warm timer, try-restarts the server when its inputs changed, and
writes the stamp (``stamp``) that lets the next unchanged run answer at
once (``entry``).
"""

from __future__ import annotations

import os
import subprocess
from typing import Callable, Sequence

from hailo_ollama_service import stamp
from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.constants import ACCESS_UNIT, KEEPWARM_TIMER, STAMP_HEADER, UNIT
from hailo_ollama_service.fs.atomic import remove_file, write_atomic
from hailo_ollama_service.root import front
from hailo_ollama_service.root.render import Result, render


def stamp_inputs(paths: Paths) -> list[str]:
    """Stamp lines of everything a render reads: package, settings, upstream's manifests."""
    return (stamp.package_lines() + [stamp.stat_line(str(paths.conffile)), stamp.stat_line(str(paths.keys_file))]
            + stamp.tree_lines(str(paths.layer_dir), 1) + stamp.tree_lines(str(paths.upstream_manifests)))


def stamp_outputs(paths: Paths, sources: Sequence[str] = ()) -> list[str]:
    """Stamp lines of everything a render writes, and of the certificate and
    key it read (``sources``: a renewed certificate takes the full path)."""
    return [stamp.stat_line(str(p)) for p in (paths.upstream_json, paths.env_file, paths.dropin, paths.book,
                                                 paths.served, paths.keep_flag, paths.access_dir,
                                                 *(paths.access_dir / n for n in front.NAMES), *sources)]


def write_stamp(paths: Paths, kind: str, inputs: list[str], sources: Sequence[str] = ()) -> bool:
    """Record a successful render for the fast path; True when a stamp was written.

    ``inputs`` were taken before the render read them. No stamp is kept
    while a stamped file is younger than stamp.RACY_NS.
    """
    lines = inputs + stamp_outputs(paths, sources)
    if stamp.young(lines):
        remove_file(paths.stamp)
        return False
    write_atomic(paths.stamp, stamp.stamp_text(STAMP_HEADER, kind, lines).encode())
    return True


def systemctl(args: Sequence[str]) -> None:
    """Run ``systemctl ARGS`` if systemd is running; raise CalledProcessError."""
    if not os.path.isdir("/run/systemd/system"):
        return
    subprocess.run(["systemctl", *args], check=True)


def apply(paths: Paths, keep_last_good: bool, try_restart: bool,
          report: Callable[[str], None], run: Callable[[Sequence[str]], None] = systemctl,
          max_rounds: int = 20) -> Result:
    """Render, and with ``try_restart`` also restart the server after a change.

    With ``try_restart`` (postinst, the trigger, the path unit: a server may
    be running) a change of root's outputs or of upstream's manifests
    try-restarts the unit, whose start mirrors the manifests inside the
    sandbox; root itself never touches the service user's tree. Without it
    (the unit's own ExecStartPre=+) the start that follows does the same.
    Re-renders until the settings files stop changing underneath, so the
    last of a burst of edits is the one served (systemd merges path-unit
    triggers that arrive while this runs). Takes the Paths, the two flags, a
    ``report`` callback for progress lines and a systemctl runner. Returns
    the combined Result; raises ConfigError/WriteError like ``render``.
    """
    total = Result()
    remove_file(paths.stamp)
    for _round in range(max_rounds):
        inputs = stamp_inputs(paths)  # also what tells that an edit came in meanwhile
        result = render(paths, keep_last_good)
        for line in result.changed:
            report(f"changed: {line}")
        total.changed.extend(result.changed)
        total.warnings.extend(w for w in result.warnings if w not in total.warnings)
        total.error = result.error
        total.dropin_changed |= result.dropin_changed
        if result.keep_changed:
            total.keep_changed = True
            verb = "start" if paths.keep_flag.exists() else "stop"
            try:
                run(["--no-block", verb, KEEPWARM_TIMER])
            except (subprocess.CalledProcessError, OSError) as err:
                total.warnings.append(f"systemctl {verb} {KEEPWARM_TIMER} failed ({err})")
        total.front_changed.extend(result.front_changed)
        total.front_on = result.front_on
        total.sources = result.sources
        for line in result.front_changed:
            report(f"changed: {line}")
        if result.front_changed and not result.front_on:
            # Off: the front gives the public port back before the server takes it.
            _front(run, total, ["stop", ACCESS_UNIT])
        if try_restart and result.server_affected:
            try:
                if result.dropin_changed:
                    run(["daemon-reload"])
                run(["try-restart", UNIT])
            except (subprocess.CalledProcessError, OSError) as err:
                total.warnings.append(f"systemctl try-restart {UNIT} failed ({err}); "
                                      f"see: journalctl -u {UNIT} -n 50 --no-pager")
        if result.front_changed and result.front_on:
            # Keys alone: straight into the running front. Else (on, or new
            # settings): the server has left the public port by now
            # (try-restart above); a reload lets running streams finish.
            keys_only = {os.path.basename(p) for p in result.front_changed} == {"keys.map"}
            if not (keys_only and front.push_keys(paths, result.keys_before)):
                _front(run, total, [*(() if try_restart else ("--no-block",)), "reload-or-restart", ACCESS_UNIT])
        if not try_restart or stamp_inputs(paths) == inputs:
            break
    if total.error is None:
        write_stamp(paths, "synced" if try_restart else "plain", inputs, total.sources)
    return total


def _front(run: Callable[[Sequence[str]], None], total: Result, args: list[str]) -> None:
    try:
        run(args)
    except (subprocess.CalledProcessError, OSError) as err:
        total.warnings.append(f"systemctl {' '.join(args)} failed ({err}); "
                              f"see: journalctl -u {ACCESS_UNIT} -n 50 --no-pager")
