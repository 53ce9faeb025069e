"""Tests of render.py: the outputs, idempotence, last-good fallback, restarts."""

from __future__ import annotations

import json
import os
import stat

import pytest
from unit_helpers import tree, write

from hailo_ollama_service import render
from hailo_ollama_service.settings import ConfigError

UPSTREAM_5_1_KEYS = {"server": {"host", "port"}, "library": {"host", "port"}, "main_poll_time_ms": None}


def test_the_json_has_exactly_the_upstream_5_1_schema_with_integers(paths):
    render.render(paths, owner=None)
    doc = json.loads(paths.upstream_json.read_text())
    assert doc == {"server": {"host": "0.0.0.0", "port": 11434},
                   "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
    assert all(type(v) is int for v in (doc["server"]["port"], doc["library"]["port"], doc["main_poll_time_ms"]))


def test_settings_from_the_conffile_reach_the_json_env_and_drop_in(paths):
    write(paths.conffile, "server:\n  port: 11500\nresource_limits:\n  memory_max: 2G\n  cpu_quota: 150%\n")
    render.render(paths, owner=None)
    assert json.loads(paths.upstream_json.read_text())["server"]["port"] == 11500
    assert "OLLAMA_HOST=0.0.0.0:11500\n" in paths.env_file.read_text()
    dropin = paths.dropin.read_text()
    assert "[Service]\nMemoryMax=2G\nCPUQuota=150%\n" in dropin


def test_the_environment_brackets_ipv6_and_adds_group_and_library_only_when_set():
    values = dict(render.DEFAULTS)
    assert render.environment(values).decode().splitlines()[1:] == ["OLLAMA_HOST=0.0.0.0:11434"]
    values.update({"server.host": "::", "device.group_id": "SHARED", "library.host": "mirror.example"})
    assert render.environment(values).decode().splitlines()[1:] == [
        "OLLAMA_HOST=[::]:11434", "HAILO_OLLAMA_VDEVICE_GROUP_ID=SHARED",
        "HAILO_OLLAMA_LIBRARY_HOST=mirror.example"]


def test_an_infinite_cpu_quota_resets_the_limit():
    values = dict(render.DEFAULTS, **{"resource_limits.cpu_quota": "infinity"})
    assert "\nCPUQuota=\n" in render.dropin(values).decode()


def test_the_drop_in_sorts_before_an_admins_systemctl_edit_override(paths):
    assert paths.dropin.parent.name == "hailo-ollama.service.d"
    assert sorted([paths.dropin.name, "override.conf"])[-1] == "override.conf"


def test_outputs_are_0644_and_nothing_is_world_writable(paths):
    render.render(paths, owner=None)
    for path in (paths.upstream_json, paths.env_file, paths.dropin):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for path in paths.root.rglob("*"):
        assert not path.lstat().st_mode & 0o002, path


def test_a_second_render_of_unchanged_settings_rewrites_nothing(paths):
    first = render.render(paths, owner=None)
    assert str(paths.upstream_json) in first.changed
    stamps = {p: p.stat().st_mtime_ns for p in (paths.upstream_json, paths.env_file, paths.dropin)}
    inodes = {p: p.stat().st_ino for p in stamps}
    second = render.render(paths, owner=None)
    assert second.changed == []
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert {p: p.stat().st_ino for p in stamps} == inodes


def test_only_the_changed_output_is_reported(paths):
    render.render(paths, owner=None)
    write(paths.conffile, "resource_limits:\n  memory_max: 1G\n")
    assert render.render(paths, owner=None).changed == [str(paths.dropin)]


def test_invalid_settings_write_nothing_at_all(paths):
    write(paths.conffile, "server:\n  port: 70000\n")
    before = tree(paths.root)
    with pytest.raises(ConfigError, match="hailo-ollama.yaml:2: server.port"):
        render.render(paths, owner=None)
    after = tree(paths.root)
    after.pop("run/hailo-ollama/render.lock", None)
    assert after == before


def test_with_keep_last_good_an_invalid_edit_keeps_the_previous_outputs(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths, owner=None)
    before = tree(paths.root)
    write(paths.conffile, "server:\n  port: [\n")
    result = render.render(paths, keep_last_good=True, owner=None)
    assert "malformed YAML" in result.error and "keeping the last good configuration" in result.error
    assert result.changed == []
    before[str(paths.conffile.relative_to(paths.root))] = paths.conffile.read_bytes()
    assert tree(paths.root) == before


def test_with_keep_last_good_the_env_file_is_restored_after_a_reboot_from_the_last_good(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths, owner=None)
    write(paths.conffile, "server:\n  port: nope\n")
    paths.env_file.unlink()  # /run is a tmpfs
    result = render.render(paths, keep_last_good=True, owner=None)
    assert result.error
    assert "OLLAMA_HOST=0.0.0.0:11500" in paths.env_file.read_text()


def test_with_keep_last_good_but_no_earlier_output_the_render_fails_clearly(paths):
    write(paths.conffile, "server:\n  port: 0\n")
    with pytest.raises(ConfigError, match="no earlier good configuration to keep"):
        render.render(paths, keep_last_good=True, owner=None)
    assert not paths.upstream_json.exists()


def test_a_symlink_planted_at_an_output_is_refused_and_its_target_untouched(paths, tmp_path):
    victim = write(tmp_path / "victim", "precious\n")
    paths.upstream_json.parent.mkdir(parents=True)
    paths.upstream_json.symlink_to(victim)
    from hailo_ollama_service.fsutil import WriteError
    with pytest.raises(WriteError, match="symbolic link"):
        render.render(paths, owner=None)
    assert victim.read_text() == "precious\n"


def test_apply_restarts_only_when_an_output_changed(paths):
    calls = []
    render.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == [["daemon-reload"], ["try-restart", "hailo-ollama.service"]]
    calls.clear()
    render.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == []
    write(paths.conffile, "server:\n  port: 11600\n")
    render.apply(paths, keep_last_good=True, try_restart=True, report=lambda _l: None, run=calls.append)
    assert calls == [["try-restart", "hailo-ollama.service"]]


def test_apply_does_not_restart_for_an_invalid_edit(paths):
    render.render(paths, owner=None)
    write(paths.conffile, "server:\n  port: 0\n")
    calls = []
    result = render.apply(paths, True, True, report=lambda _l: None, run=calls.append)
    assert result.error and calls == []


def test_apply_renders_again_when_the_conffile_changes_during_a_restart(paths):
    render.render(paths, owner=None)
    ports = iter([11501, 11502])
    calls = []

    def restart(args):  # an admin saves twice while the server restarts
        calls.append(args)
        port = next(ports, None)
        if port:
            write(paths.conffile, f"server:\n  port: {port}\n")

    write(paths.conffile, "server:\n  port: 11500\n")
    render.apply(paths, True, True, report=lambda _l: None, run=restart)
    assert json.loads(paths.upstream_json.read_text())["server"]["port"] == 11502
    assert len(calls) == 3


def test_apply_without_try_restart_never_calls_systemctl(paths):
    calls = []
    render.apply(paths, False, False, report=lambda _l: None, run=calls.append)
    assert calls == []


def test_render_creates_the_data_layout(paths):
    render.render(paths, owner=None)
    assert paths.manifests_dir.is_dir() and paths.blob_dir.is_dir()
    assert os.listdir(paths.manifests_dir) == []


def test_a_failing_systemctl_is_a_warning_not_a_crash(paths):
    import subprocess

    def failing(args):
        raise subprocess.CalledProcessError(1, ["systemctl", *args])
    result = render.apply(paths, True, True, report=lambda _l: None, run=failing)
    assert any("try-restart hailo-ollama.service failed" in w for w in result.warnings)


def test_served_values_are_the_last_good_ones_while_the_settings_are_invalid(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths, owner=None)
    write(paths.conffile, "server:\n  port: 0\n")
    assert render.served_values(paths)["server.port"] == 11500


def test_served_values_fall_back_to_the_settings_before_the_first_render(paths):
    write(paths.conffile, "server:\n  port: 11600\n")
    assert render.served_values(paths)["server.port"] == 11600
