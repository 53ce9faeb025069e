"""Tests of root/apply.py: the try-restart loop, the keep-warm timer, and the stamp it keeps or removes."""

from __future__ import annotations

import json

import pytest

from hailo_ollama_service.root import apply, render

from unit_helpers import apply_quietly, write


def test_apply_restarts_only_when_an_output_changed(paths):
    calls = []
    apply.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == [["daemon-reload"], ["try-restart", "hailo-ollama.service"]]
    calls.clear()
    apply.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == []
    write(paths.conffile, "server:\n  port: 11600\n")
    apply.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == [["try-restart", "hailo-ollama.service"]]


def test_apply_does_not_restart_for_an_invalid_edit(paths):
    render.render(paths)
    write(paths.conffile, "server:\n  port: 0\n")
    calls = []
    result = apply.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    assert result.error and calls == []


def test_apply_renders_again_when_the_conffile_changes_during_a_restart(paths):
    render.render(paths)
    ports = iter([11501, 11502])
    calls = []

    def restart(args):  # an admin saves twice while the server restarts
        calls.append(args)
        port = next(ports, None)
        if port:
            write(paths.conffile, f"server:\n  port: {port}\n")

    write(paths.conffile, "server:\n  port: 11500\n")
    apply.apply(paths, True, True, report=lambda _l: None, run=restart)
    assert json.loads(paths.upstream_json.read_text())["server"]["port"] == 11502
    assert len(calls) == 3


def test_apply_without_try_restart_never_calls_systemctl(paths):
    calls = []
    apply.apply(paths, False, False, report=lambda _l: None, run=calls.append)
    assert calls == []


def _ship(paths, rel: str, text: str) -> None:
    target = paths.upstream_manifests / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_apply_restarts_the_server_when_only_upstreams_manifests_changed(paths):
    apply.apply(paths, True, True, report=lambda _l: None, run=lambda _a: None)
    _ship(paths, "new/1b/manifest.json", '{"hef_h10h": "x"}')
    calls = []
    result = apply.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    assert calls == [["try-restart", "hailo-ollama.service"]]
    assert result.changed == [str(paths.upstream_manifests)]


def test_apply_restarts_nothing_when_upstreams_manifests_are_the_same_again(paths):
    _ship(paths, "a/1b/manifest.json", "{}")
    apply.apply(paths, True, True, report=lambda _l: None, run=lambda _a: None)
    (paths.upstream_manifests / "a/1b/manifest.json").write_text("{}")  # rewritten, same content
    calls = []
    result = apply.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    assert calls == [] and result.changed == []


def test_apply_never_touches_the_service_users_tree_nor_starts_a_process(paths, monkeypatch):
    import subprocess

    from hailo_ollama_service.user import models as state
    _ship(paths, "a/1b/manifest.json", "{}")
    monkeypatch.setattr(state, "sync", lambda *a, **k: pytest.fail("root ran the service user's step"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail(f"root started {a}"))
    apply.apply(paths, True, True, report=lambda _l: None, run=lambda _a: None)
    assert not paths.state_dir.exists()


def test_a_start_records_upstreams_manifests_so_a_later_edit_restarts_nothing_for_them(paths):
    _ship(paths, "a/1b/manifest.json", "{}")
    apply.apply(paths, True, False, report=lambda _l: None)  # the unit's ExecStartPre=+
    calls = []
    apply.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    assert calls == []


def test_a_failing_systemctl_is_a_warning_not_a_crash(paths):
    import subprocess

    def failing(args):
        raise subprocess.CalledProcessError(1, ["systemctl", *args])
    result = apply.apply(paths, True, True, report=lambda _l: None, run=failing)
    assert any("try-restart hailo-ollama.service failed" in w for w in result.warnings)


def test_keep_loaded_sets_the_timers_flag_and_starts_or_stops_the_timer_only_on_a_change(paths):
    calls = []

    def again():
        apply.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    again()
    assert not paths.keep_flag.exists() and not [c for c in calls if "hailo-ollama-keepwarm.timer" in c]
    write(paths.conffile, "warmup:\n  model: qwen2:1.5b\n  keep_loaded: true\n")
    calls.clear()
    again()
    assert paths.keep_flag.is_file() and ["--no-block", "start", "hailo-ollama-keepwarm.timer"] in calls
    calls.clear()
    again()
    assert calls == []
    write(paths.conffile, "warmup:\n  model: \"\"\n  keep_loaded: true\n")  # nothing to keep loaded
    again()
    assert not paths.keep_flag.exists() and ["--no-block", "stop", "hailo-ollama-keepwarm.timer"] in calls


def test_invalid_settings_remove_the_stamp_so_the_error_is_logged_every_time(stamped):
    write(stamped.conffile, "server:\n  port: nope\n")
    result = apply_quietly(stamped)
    assert result.error and not stamped.stamp.exists()
