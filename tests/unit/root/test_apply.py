"""Tests of root/apply.py: the try-restart loop, the keep-warm timer, and the stamp it keeps or removes."""

from __future__ import annotations

import json

import pytest

from hailo_ollama_service.root import apply, render

from unit_helpers import RuntimeApi, apply_quietly, fake_haproxy, render_unchanged, write


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


# ---------------------------------------------------------------- the access front's unit
SERVER, FRONT = "hailo-ollama.service", "hailo-ollama-access.service"


def applied(paths, try_restart: bool = True):
    """apply's systemctl calls and its Result."""
    calls = []
    result = apply.apply(paths, True, try_restart, report=lambda _l: None, run=calls.append)
    return calls, result


def test_turning_access_on_restarts_the_server_off_the_port_before_the_front_takes_it(paths):
    fake_haproxy(paths)
    applied(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    calls, result = applied(paths)
    assert calls == [["try-restart", SERVER], ["reload-or-restart", FRONT]]
    assert result.front_on and result.front_changed


def test_turning_access_off_stops_the_front_before_the_server_takes_the_port_back(paths):
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    applied(paths)
    write(paths.conffile, "access:\n  enabled: false\n")
    calls, result = applied(paths)
    assert calls == [["stop", FRONT], ["try-restart", SERVER]]
    assert not result.front_on and not paths.access_dir.exists()


def test_a_start_of_the_server_reloads_the_front_without_waiting_for_it(paths):
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    calls, _result = applied(paths, try_restart=False)  # the unit's own ExecStartPre=+
    assert calls == [["--no-block", "reload-or-restart", FRONT]]


def test_an_unchanged_apply_with_access_on_calls_no_systemctl_and_changes_nothing(paths):
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    applied(paths)
    calls, result = applied(paths)
    assert calls == [] and result.changed == [] and result.front_changed == [] and result.front_on


def test_a_new_network_reloads_the_front_and_leaves_the_server_alone(paths):
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    applied(paths)
    write(paths.conffile, "access:\n  enabled: true\n  networks: 192.168.1.0/24\n")
    calls, result = applied(paths)
    assert calls == [["reload-or-restart", FRONT]] and result.changed == []
    assert result.front_changed == [str(paths.front_config)]


def test_a_new_key_alone_reloads_the_front_when_its_runtime_api_does_not_answer(paths):
    from hailo_ollama_service.root import keys
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    applied(paths)
    keys.add(paths, "alice", admin=False)
    calls, result = applied(paths)
    assert calls == [["reload-or-restart", FRONT]]
    assert result.front_changed == [str(paths.access_dir / "keys.map")] and result.changed == []


def test_a_front_haproxy_refuses_calls_no_systemctl_and_is_the_error(paths):
    fake_haproxy(paths)
    applied(paths)
    fake_haproxy(paths, status=1)
    write(paths.conffile, "access:\n  enabled: true\n")
    calls, result = applied(paths)
    assert calls == [] and "HAProxy refuses" in result.error and not paths.stamp.exists()


def test_a_failing_front_unit_is_a_warning_naming_its_journal(paths):
    import subprocess
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")

    def failing(args):
        if FRONT in args:
            raise subprocess.CalledProcessError(1, ["systemctl", *args])
    result = apply.apply(paths, True, True, report=lambda _l: None, run=failing)
    assert any(w.startswith(f"systemctl reload-or-restart {FRONT} failed") and f"journalctl -u {FRONT}" in w
               for w in result.warnings)


@pytest.mark.parametrize("change", ["key", "map"])
def test_the_keys_file_and_the_front_files_are_in_the_render_stamp(paths, later, change):
    from hailo_ollama_service.root import keys
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    apply_quietly(paths, try_restart=True)
    assert render_unchanged(paths, try_restart=True)
    if change == "key":
        keys.add(paths, "alice", admin=False)
    else:
        (paths.access_dir / "keys.map").write_text("# edited by hand\n")
    assert not render_unchanged(paths, try_restart=True)


def test_a_new_key_goes_to_the_running_front_without_any_systemctl_when_its_runtime_api_answers(paths):
    from hailo_ollama_service.root import keys
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    applied(paths)
    api = RuntimeApi(paths)
    try:
        keys.add(paths, "alice", admin=True)
        calls, result = applied(paths)
        assert calls == [] and result.front_changed == [str(paths.access_dir / "keys.map")]
        assert api.commands == [f"add map {paths.access_dir}/keys.map {keys.load(paths)[0].sha256} admin"]
    finally:
        api.close()
