"""Tests of root/render.py: the outputs, idempotence, last-good fallback, the service user's tree left alone."""

from __future__ import annotations

import json
import stat

import pytest

from hailo_ollama_service.config import record
from hailo_ollama_service.config.load import ConfigError
from hailo_ollama_service.root import render

from unit_helpers import fake_haproxy, tree, write

UPSTREAM_5_1_KEYS = {"server": {"host", "port"}, "library": {"host", "port"}, "main_poll_time_ms": None}


def test_the_json_has_exactly_the_upstream_5_1_schema_with_integers(paths):
    render.render(paths)
    doc = json.loads(paths.upstream_json.read_text())
    assert doc == {"server": {"host": "0.0.0.0", "port": 11434},
                   "library": {"host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}
    assert all(type(v) is int for v in (doc["server"]["port"], doc["library"]["port"], doc["main_poll_time_ms"]))


def test_settings_from_the_conffile_reach_the_json_env_and_drop_in(paths):
    write(paths.conffile, "server:\n  port: 11500\nresource_limits:\n  memory_max: 2G\n  cpu_quota: 150%\n")
    render.render(paths)
    assert json.loads(paths.upstream_json.read_text())["server"]["port"] == 11500
    assert "OLLAMA_HOST=0.0.0.0:11500\n" in paths.env_file.read_text()
    dropin = paths.dropin.read_text()
    assert "[Service]\nMemoryMax=2G\nCPUQuota=150%\n" in dropin


def test_the_drop_in_sorts_before_an_admins_systemctl_edit_override(paths):
    assert paths.dropin.parent.name == "hailo-ollama.service.d"
    assert sorted([paths.dropin.name, "override.conf"])[-1] == "override.conf"


def test_outputs_are_0644_and_nothing_is_world_writable(paths):
    render.render(paths)
    for path in (paths.upstream_json, paths.env_file, paths.dropin):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for path in paths.root.rglob("*"):
        assert not path.lstat().st_mode & 0o002, path


def test_a_second_render_of_unchanged_settings_rewrites_nothing(paths):
    first = render.render(paths)
    assert str(paths.upstream_json) in first.changed
    stamps = {p: p.stat().st_mtime_ns for p in (paths.upstream_json, paths.env_file, paths.dropin)}
    inodes = {p: p.stat().st_ino for p in stamps}
    second = render.render(paths)
    assert second.changed == []
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert {p: p.stat().st_ino for p in stamps} == inodes


def test_only_the_changed_output_is_reported(paths):
    render.render(paths)
    write(paths.conffile, "resource_limits:\n  memory_max: 1G\n")
    assert render.render(paths).changed == [str(paths.dropin)]


def test_invalid_settings_write_nothing_at_all(paths):
    write(paths.conffile, "server:\n  port: 70000\n")
    before = tree(paths.root)
    with pytest.raises(ConfigError, match="hailo-ollama.yaml:2: server.port"):
        render.render(paths)
    after = tree(paths.root)
    after.pop("run/hailo-ollama/render.lock", None)
    assert after == before


def test_with_keep_last_good_an_invalid_edit_keeps_the_previous_outputs(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    before = tree(paths.root)
    write(paths.conffile, "server:\n  port: [\n")
    result = render.render(paths, keep_last_good=True)
    assert "malformed YAML" in result.error and "keeping the last good configuration" in result.error
    assert result.changed == []
    before[str(paths.conffile.relative_to(paths.root))] = paths.conffile.read_bytes()
    assert tree(paths.root) == before


def test_with_keep_last_good_the_env_file_is_restored_after_a_reboot_from_the_last_good(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    write(paths.conffile, "server:\n  port: nope\n")
    paths.env_file.unlink()  # /run is a tmpfs
    result = render.render(paths, keep_last_good=True)
    assert result.error
    assert "OLLAMA_HOST=0.0.0.0:11500" in paths.env_file.read_text()


def test_with_keep_last_good_but_no_earlier_output_the_render_fails_clearly(paths):
    write(paths.conffile, "server:\n  port: 0\n")
    with pytest.raises(ConfigError, match="no earlier good configuration to keep"):
        render.render(paths, keep_last_good=True)
    assert not paths.upstream_json.exists()


def test_a_symlink_planted_at_an_output_is_refused_and_its_target_untouched(paths, tmp_path):
    victim = write(tmp_path / "victim", "precious\n")
    paths.upstream_json.parent.mkdir(parents=True)
    paths.upstream_json.symlink_to(victim)
    from hailo_ollama_service.fs.atomic import WriteError
    with pytest.raises(WriteError, match="symbolic link"):
        render.render(paths)
    assert victim.read_text() == "precious\n"


def test_render_never_touches_the_service_users_tree(paths):
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    render.render(paths)
    assert not paths.state_dir.exists()
    write(paths.legacy_state, json.dumps({"last_good": {"server.port": 11999}, "mirrored": {"../../x": "0" * 64}}))
    before = tree(paths.state_dir)
    render.render(paths, keep_last_good=True)
    assert tree(paths.state_dir) == before


def test_roots_bookkeeping_lies_outside_the_service_users_tree(paths):
    render.render(paths)
    assert paths.book.is_file() and paths.book.parent == paths.book_dir
    assert paths.state_dir not in paths.book.parents
    assert stat.S_IMODE(paths.book_dir.stat().st_mode) == 0o755
    assert stat.S_IMODE(paths.book.stat().st_mode) == 0o644


def test_the_old_bookkeeping_in_the_service_users_tree_is_never_trusted(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    paths.book.unlink()  # as after an upgrade from 1.0.0
    write(paths.legacy_state, json.dumps({"last_good": {"server.port": 11999}}))
    write(paths.conffile, "server:\n  port: nope\n")
    paths.env_file.unlink()
    result = render.render(paths, keep_last_good=True)
    assert result.error
    assert "OLLAMA_HOST=0.0.0.0:11500\n" in paths.env_file.read_text()
    assert record.served_values(paths)["server.port"] == 11500


def test_without_roots_record_the_last_good_settings_are_rebuilt_from_the_rendered_files(paths):
    write(paths.conffile, "server:\n  host: 127.0.0.1\n  port: 11500\nresource_limits:\n  memory_max: 2G\n"
          "  cpu_quota: infinity\ndevice:\n  group_id: SHARED\nmain_poll_time_ms: 300\n")
    render.render(paths)
    expected = json.loads(paths.book.read_text())["last_good"]
    paths.book.unlink()
    write(paths.conffile, "server: [\n")
    render.render(paths, keep_last_good=True)
    assert json.loads(paths.book.read_text())["last_good"] == expected


def test_a_poisoned_last_good_record_is_not_written_into_the_environment(paths):
    write(paths.conffile, "server:\n  port: 11500\n")
    render.render(paths)
    doc = json.loads(paths.book.read_text())
    doc["last_good"]["server.host"] = "0.0.0.0\nLD_PRELOAD=/tmp/x.so"
    paths.book.write_text(json.dumps(doc))
    write(paths.conffile, "server: [\n")
    paths.env_file.unlink()
    render.render(paths, keep_last_good=True)
    assert "LD_PRELOAD" not in paths.env_file.read_text()


def test_the_keep_loaded_flag_does_not_restart_the_server(paths):
    render.render(paths)
    write(paths.conffile, "warmup:\n  model: qwen2:1.5b\n  keep_loaded: true\n")
    result = render.render(paths)
    assert result.keep_changed and not result.server_affected


# ---------------------------------------------------------------- the access front
ACCESS = "access:\n  enabled: true\n"


def front_files(paths) -> set[str]:
    return {p.name for p in paths.access_dir.iterdir()} if paths.access_dir.exists() else set()


def test_access_on_moves_the_server_to_loopback_and_writes_the_front_files(paths):
    fake_haproxy(paths)
    write(paths.conffile, ACCESS)
    result = render.render(paths)
    assert json.loads(paths.upstream_json.read_text())["server"] == {"host": "127.0.0.1", "port": 11435}
    assert "OLLAMA_HOST=127.0.0.1:11435\n" in paths.env_file.read_text()
    assert paths.served.read_text() == "127.0.0.1 11435\n"
    assert result.front_on and sorted(result.front_changed) == sorted(
        str(paths.access_dir / n) for n in ("haproxy.cfg", "keys.map"))
    assert front_files(paths) == {"haproxy.cfg", "keys.map"}
    config = paths.front_config.read_text()
    assert "    bind 0.0.0.0:11434\n" in config and "server hailo-ollama 127.0.0.1:11435 maxconn 1" in config
    assert stat.S_IMODE(paths.front_config.stat().st_mode) == 0o640


def test_access_off_again_removes_the_front_files_and_gives_the_server_its_address_back(paths):
    fake_haproxy(paths)
    write(paths.conffile, ACCESS)
    render.render(paths)
    write(paths.conffile, "access:\n  enabled: false\n")
    result = render.render(paths)
    assert not result.front_on and len(result.front_changed) == 2
    assert not paths.access_dir.exists()
    assert json.loads(paths.upstream_json.read_text())["server"] == {"host": "0.0.0.0", "port": 11434}
    assert paths.served.read_text() == "0.0.0.0 11434\n"


def test_an_unchanged_render_with_access_on_changes_nothing(paths):
    fake_haproxy(paths)
    write(paths.conffile, ACCESS)
    render.render(paths)
    before = {p: p.stat().st_mtime_ns for p in paths.access_dir.iterdir()}
    again = render.render(paths)
    assert again.changed == [] and again.front_changed == [] and again.front_on
    assert {p: p.stat().st_mtime_ns for p in paths.access_dir.iterdir()} == before


@pytest.mark.parametrize("first", ["", ACCESS])
def test_a_front_haproxy_refuses_keeps_the_last_good_outputs_and_writes_nothing(paths, first):
    fake_haproxy(paths)
    write(paths.conffile, first)
    render.render(paths)
    fake_haproxy(paths, status=1)
    write(paths.conffile, ACCESS + "  networks: 192.168.1.0/24\n")
    before = tree(paths.root)
    result = render.render(paths, keep_last_good=True)
    assert "HAProxy refuses the access front's configuration: [ALERT]" in result.error
    assert f"parsing [{paths.access_dir}/haproxy.cfg:7] : nope" in result.error
    assert "keeping the last good configuration" in result.error
    assert result.changed == [] and result.front_changed == [] and result.front_on == bool(first)
    assert tree(paths.root) == before
    with pytest.raises(ConfigError, match="HAProxy refuses"):
        render.render(paths)
    assert tree(paths.root) == before


def test_access_on_without_haproxy_installed_is_refused_and_the_server_keeps_its_address(paths):
    render.render(paths)
    write(paths.conffile, ACCESS)
    result = render.render(paths, keep_last_good=True)
    assert "sudo apt install haproxy" in result.error
    assert json.loads(paths.upstream_json.read_text())["server"] == {"host": "0.0.0.0", "port": 11434}
    assert not paths.access_dir.exists()
