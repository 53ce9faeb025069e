"""Tests of config/outputs.py: the bytes of the JSON, environment and drop-in, and rebuilding
the settings from them (``recover``)."""

from __future__ import annotations

import json

import pytest

from hailo_ollama_service.config import outputs
from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.root import render

from unit_helpers import write


def test_the_environment_brackets_ipv6_and_adds_group_and_library_only_when_set():
    values = dict(DEFAULTS)
    assert outputs.environment(values).decode().splitlines()[1:] == ["OLLAMA_HOST=0.0.0.0:11434"]
    values.update({"server.host": "::", "device.group_id": "SHARED", "library.host": "mirror.example"})
    assert outputs.environment(values).decode().splitlines()[1:] == [
        "OLLAMA_HOST=[::]:11434", "HAILO_OLLAMA_VDEVICE_GROUP_ID=SHARED",
        "HAILO_OLLAMA_LIBRARY_HOST=mirror.example"]


def test_an_infinite_cpu_quota_resets_the_limit():
    values = dict(DEFAULTS, **{"resource_limits.cpu_quota": "infinity"})
    assert "\nCPUQuota=\n" in outputs.dropin(values).decode()


@pytest.mark.parametrize("key, value", [
    ("server.host", "example.org\nExecStartPre=/bin/sh"), ("resource_limits.memory_max", "4G\nUser=root"),
    ("resource_limits.cpu_quota", "80%\\"), ("device.group_id", "A\rB"), ("library.host", "a$b"),
    ("server.port", "11434\nX=1")])
def test_a_value_that_could_add_a_line_to_a_systemd_file_is_refused_before_writing(paths, key, value):
    values = dict(DEFAULTS, **{key: value})
    from hailo_ollama_service.fs.atomic import WriteError
    with pytest.raises(WriteError, match=f"{key}: refusing to write"):
        outputs.environment(values) + outputs.dropin(values)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "127.0.0.1", "::1", "pi5.local", "192.168.1.20"])
def test_every_rendered_ollama_host_passes_the_check_serve_makes_before_starting_the_server(host):
    from hailo_ollama_service.user import serve
    values = dict(DEFAULTS, **{"server.host": host, "server.port": 11500})
    line = next(x for x in outputs.environment(values).decode().splitlines() if x.startswith("OLLAMA_HOST="))
    assert serve.check_listen_address(line.split("=", 1)[1]) is None


def test_the_last_good_settings_are_rebuilt_from_the_json_drop_in_and_environment(paths):
    write(paths.conffile, "server:\n  host: ::1\n  port: 11500\nlibrary:\n  host: mirror.lan\n  port: 8443\n"
          "main_poll_time_ms: 150\nresource_limits:\n  memory_max: 3G\n  cpu_quota: infinity\n"
          "device:\n  group_id: SHARED\nwarmup:\n  model: qwen2:1.5b\n")
    render.render(paths)
    expected = dict(json.loads(paths.book.read_text())["last_good"], **{"warmup.model": ""})
    assert outputs.recover(paths) == expected


def test_nothing_is_rebuilt_without_a_usable_json(paths):
    assert outputs.recover(paths) is None
    write(paths.upstream_json, '{"server": {"port": 1}}')
    assert outputs.recover(paths) is None
    write(paths.upstream_json, json.dumps({"server": {"host": "0.0.0.0", "port": 0}, "library": {
        "host": "dev-public.hailo.ai", "port": 443}, "main_poll_time_ms": 200}))
    assert outputs.recover(paths) is None  # port 0 fails the schema


ACCESS_ON = {"access.enabled": True}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_with_access_on_the_json_and_environment_put_the_server_on_loopback_behind_the_front(host):
    values = dict(DEFAULTS, **ACCESS_ON, **{"server.host": host, "server.port": 11500})
    assert json.loads(outputs.upstream_json(values))["server"] == {"host": "127.0.0.1", "port": 11435}
    assert outputs.environment(values).decode().splitlines()[1] == "OLLAMA_HOST=127.0.0.1:11435"
    off = dict(values, **{"access.enabled": False})
    assert json.loads(outputs.upstream_json(off))["server"] == {"host": host, "port": 11500}


def test_the_inner_port_is_the_one_the_settings_name():
    values = dict(DEFAULTS, **ACCESS_ON, **{"access.server_port": 12001})
    assert json.loads(outputs.upstream_json(values))["server"]["port"] == 12001
    assert "OLLAMA_HOST=127.0.0.1:12001\n" in outputs.environment(values).decode()


def test_the_kiosk_allowlist_reaches_the_environment_as_names_joined_by_commas_only_when_set():
    assert not any(line.startswith("HAILO_OLLAMA_SERVICE_MODELS=")
                   for line in outputs.environment(dict(DEFAULTS)).decode().splitlines())
    values = dict(DEFAULTS, **{"models.allowed": " qwen2:1.5b , llama3.2:3b "})
    assert outputs.environment(values).decode().splitlines()[-1] == "HAILO_OLLAMA_SERVICE_MODELS=qwen2:1.5b,llama3.2:3b"


def test_an_allowlist_that_could_add_a_line_is_refused_before_writing():
    from hailo_ollama_service.fs.atomic import WriteError
    with pytest.raises(WriteError, match="models.allowed: refusing to write"):
        outputs.environment(dict(DEFAULTS, **{"models.allowed": "qwen2\nLD_PRELOAD=/tmp/x.so"}))
