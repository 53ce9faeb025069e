"""Tests of host/doctor.py: each check's statuses and fixes on faked machines."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.host import doctor, machine, report
from hailo_ollama_service.host.machine import Host
from hailo_ollama_service.root import render

from unit_helpers import SHOW_ACTIVE, host_for, write


def by_id(found, name):
    return next(c for c in found if c.id == name)


def test_binary_fails_with_the_download_hint_when_upstream_is_missing(paths):
    check = doctor.check_binary(host_for(paths))
    assert check.status == "fail" and "Developer Zone" in check.fix


def test_binary_reports_the_upstream_package_version(paths):
    write(paths.root / "usr/bin/hailo-ollama", "#!/bin/sh\n").chmod(0o755)
    check = doctor.check_binary(host_for(paths))
    assert check.status == "ok" and "hailo-gen-ai-model-zoo 5.1.1" in check.found


@pytest.mark.parametrize("version,kind", [("5.1.1", "5.1 (config file)"), ("5.3.0-1", "5.3 (environment)")])
def test_generation_compares_the_file_that_upstream_version_reads(paths, version, kind):
    render.render(paths)
    values = dict(DEFAULTS)
    check = doctor.check_generation(host_for(paths, {"dpkg-query -W": (0, version)}), values)
    assert check.status == "ok" and kind in check.found
    target = paths.env_file if version.startswith("5.3") else paths.upstream_json
    target.write_text("stale\n")
    check = doctor.check_generation(host_for(paths, {"dpkg-query -W": (0, version)}), values)
    assert check.status == "fail" and "render --try-restart" in check.fix


def test_device_missing_fails_with_the_driver_fix(paths):
    check = doctor.check_device(host_for(paths))
    assert check.status == "fail" and "hailo-h10-all" in check.fix


def test_device_access_is_judged_from_owner_group_and_mode(paths, monkeypatch):
    node = write(paths.root / "dev/hailo0", "")
    import pwd
    entry = pwd.getpwuid(os.getuid())
    monkeypatch.setattr(doctor, "SERVICE_USER", entry.pw_name)
    os.chmod(node, 0o600)
    os.chown(node, 0 if entry.pw_uid else 65534, 65534) if os.geteuid() == 0 else None
    if os.geteuid() == 0:
        assert doctor.check_device(host_for(paths)).status == "fail"
        assert "udevadm trigger" in doctor.check_device(host_for(paths)).fix
        os.chmod(node, 0o666)
    else:
        os.chmod(node, 0o600)  # owned by us: we can open it
    check = doctor.check_device(host_for(paths))
    assert check.status == "ok" and "can open it" in check.found


def test_device_with_no_service_user_warns(paths):
    write(paths.root / "dev/h1x-0", "")
    check = doctor.check_device(host_for(paths))
    assert check.status == "warn" and "does not exist" in check.found


def test_firmware_is_parsed_from_hailortcli(paths):
    out = "Executing on device: 0001:01:00.0\nDevice Architecture: HAILO10H\nFirmware Version: 5.1.1 (release,app)\n"
    check = doctor.check_firmware(host_for(paths, {"hailortcli fw-control": (0, out)}))
    assert check.status == "ok" and check.found == "HAILO10H, firmware 5.1.1 (release,app)"


def test_firmware_is_skipped_with_a_note_without_hailortcli(paths):
    check = doctor.check_firmware(host_for(paths))
    assert check.status == "skip" and "hailortcli not available" in check.found


def test_a_failing_hailortcli_is_a_failure_with_its_last_line(paths):
    check = doctor.check_firmware(host_for(paths, {"hailortcli fw-control": (1, "[HailoRT] [error] "
                                                   "HAILO_OUT_OF_PHYSICAL_DEVICES(74)")}))
    assert check.status == "fail" and "HAILO_OUT_OF_PHYSICAL_DEVICES(74)" in check.found


def test_invalid_settings_fail_with_the_one_line_error(paths):
    write(paths.conffile, "server:\n  port: 0\n")
    check, values = doctor.check_settings(host_for(paths))
    assert values is None and check.status == "fail" and "hailo-ollama.yaml:2: server.port" in check.found


def test_settings_not_yet_rendered_warn_and_rendered_ones_pass(paths):
    check, _ = doctor.check_settings(host_for(paths))
    assert check.status == "warn"
    render.render(paths)
    check, _ = doctor.check_settings(host_for(paths))
    assert check.status == "ok"


def test_the_diversion_is_read_from_dpkgs_database(paths):
    assert doctor.check_diversion(host_for(paths)).status == "fail"
    write(paths.root / "var/lib/dpkg/diversions", "/etc/xdg/hailo-ollama/hailo-ollama.json\n"
          "/etc/xdg/hailo-ollama/hailo-ollama.json.distrib\nhailo-ollama-service\n")
    assert doctor.check_diversion(host_for(paths)).status == "ok"


def test_a_stopped_unit_fails_with_enable_now_and_journalctl(paths):
    show = SHOW_ACTIVE.replace("ActiveState=active", "ActiveState=failed").replace("NRestarts=0", "NRestarts=7")
    check = doctor.check_unit(host_for(paths, {"systemctl show": (0, show)}))
    assert check.status == "fail" and "7 restarts" in check.found
    assert "systemctl enable --now" in check.fix and "journalctl" in check.fix


def test_a_unit_that_restarted_warns_and_a_disabled_one_too(paths):
    show = SHOW_ACTIVE.replace("NRestarts=0", "NRestarts=2")
    restarted = doctor.check_unit(host_for(paths, {"systemctl show": (0, show)}))
    assert restarted.status == "warn"
    disabled = doctor.check_unit(host_for(paths, {"systemctl show": (0, SHOW_ACTIVE.replace("=enabled", "=disabled"))}))
    assert disabled.status == "warn" and "systemctl enable" in disabled.fix


def test_the_api_check_lists_models_from_the_running_server(paths, standin):
    values = standin.values()
    check, listed, pulled = doctor.check_api(host_for(paths), values)
    assert check.status == "ok" and "version 0.5.1" in check.found
    assert "qwen2:1.5b" in listed and pulled == []
    models = doctor.check_models(host_for(paths), listed, pulled, True)
    assert models.status == "warn" and "hailo-ollama-service pull" in models.fix


def test_an_api_that_accepts_and_never_answers_does_not_hang_the_check(paths):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        values = dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": silent.getsockname()[1]})
        start = time.monotonic()
        check, _, _ = doctor.check_api(host_for(paths), values)
    assert check.status == "fail" and time.monotonic() - start < 3


def test_the_port_check_names_another_holder_with_the_fix(standin):
    from hailo_ollama_service.config.paths import make_paths
    values = dict(DEFAULTS, **{"server.port": standin.port})
    check = doctor.check_port(Host(make_paths("/", {}), is_root=True), values)
    assert check.status == "fail"  # the stand-in runs as python3, not as our hailo-ollama service
    assert f"port {standin.port} is already in use by python3" in check.found and "kill" in check.fix


def test_a_free_port_warns_that_nothing_listens(paths):
    write(paths.root / "proc/net/tcp", "header\n")
    check = doctor.check_port(host_for(paths), dict(DEFAULTS))
    assert check.status == "warn" and "nothing listens on port 11434" in check.found


def test_disk_space_below_two_gibibytes_warns(paths, monkeypatch):
    from collections import namedtuple
    usage = namedtuple("usage", "f_bavail f_frsize")
    (paths.models_dir).mkdir(parents=True)
    monkeypatch.setattr(machine.os, "statvfs", lambda _p: usage(1024 ** 2, 1024))
    check = doctor.check_disk(host_for(paths))
    assert check.status == "warn" and str(paths.models_dir) in check.found
    monkeypatch.setattr(machine.os, "statvfs", lambda _p: usage(50 * 1024 ** 2, 1024))
    assert doctor.check_disk(host_for(paths)).status == "ok"


def test_a_link_in_place_of_models_is_not_where_free_space_is_measured(paths, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    paths.state_dir.mkdir(parents=True)
    paths.models_dir.symlink_to(tmp_path / "elsewhere")
    assert str(paths.models_dir) not in doctor.check_disk(host_for(paths)).found


@pytest.mark.parametrize("limit,status", [("4G", "ok"), ("512M", "warn"), ("16G", "warn"), ("50%", "ok"),
                                          ("infinity", "ok")])
def test_the_memory_limit_is_compared_with_the_ram(paths, limit, status):
    write(paths.root / "proc/meminfo", "MemTotal:        8253404 kB\nMemFree: 1 kB\n")
    values = dict(DEFAULTS, **{"resource_limits.memory_max": limit})
    assert doctor.check_memory(host_for(paths), values).status == status


def test_temperature_and_throttling_flags_are_read_where_the_pi_exposes_them(paths):
    write(paths.root / "sys/class/thermal/thermal_zone0/temp", "52312\n")
    ok = doctor.check_thermal(host_for(paths, {"vcgencmd get_throttled": (0, "throttled=0x0")}))
    assert ok.status == "ok" and "SoC 52.3 °C" in ok.found
    hot = doctor.check_thermal(host_for(paths, {"vcgencmd get_throttled": (0, "throttled=0x50005")}))
    assert hot.status == "warn" and "under-voltage" in hot.found and "throttled" in hot.found


def test_thermal_is_skipped_with_a_note_off_a_pi(paths):
    check = doctor.check_thermal(host_for(paths))
    assert check.status == "skip" and "not a Raspberry Pi" in check.found


def test_a_full_run_with_the_api_down_is_fast_and_reports_every_check(paths):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    write(paths.conffile, f"server:\n  host: 127.0.0.1\n  port: {free}\n")
    start = time.monotonic()
    found = doctor.diagnose(host_for(paths, root=False))
    assert time.monotonic() - start < 5
    ids = [c.id for c in found]
    assert ids == ["binary", "generation", "device", "firmware", "stack", "settings", "diversion", "port", "unit",
                   "access", "api", "models", "warmup", "library", "disk", "memory", "thermal", "privileges"]
    assert by_id(found, "api").status == "fail"


def test_verify_passes_on_a_healthy_service_and_fails_when_the_api_is_down(paths, standin):
    write(paths.conffile, f"server:\n  host: 127.0.0.1\n  port: {standin.port}\n")
    found = doctor.verify(host_for(paths))
    assert [c.id for c in found] == ["unit", "api", "port", "models"]
    assert by_id(found, "api").status == "ok" and by_id(found, "models").status == "ok"
    standin.stop()
    assert by_id(doctor.verify(host_for(paths)), "api").status == "fail"


# ---------------------------------------------------------------- the model library
def library_values(host: str, port: int) -> dict:
    return dict(DEFAULTS, **{"library.host": host, "library.port": port})


def test_library_accepts_a_lan_library_with_a_self_signed_certificate_and_names_it(paths):
    import shutil

    from unit_helpers import Library
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    library = Library()
    try:
        check = doctor.check_library(host_for(paths), library_values("localhost", library.port))
    finally:
        library.stop()
    assert check.status == "ok", check
    assert check.found.startswith(f"library localhost:{library.port} answers HTTPS (certificate not checked")


def test_library_that_is_not_https_is_a_warning_naming_it(paths):
    import shutil

    from unit_helpers import Library
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    library = Library("--plain")
    try:
        check = doctor.check_library(host_for(paths), library_values("127.0.0.1", library.port))
    finally:
        library.stop()
    assert check.status == "warn"
    assert f"library 127.0.0.1:{library.port}: 127.0.0.1:{library.port} does not answer HTTPS" in check.found
    assert "models already pulled keep working" in check.found and "dpkg-reconfigure" in check.fix


def test_an_unreachable_library_is_a_warning_not_a_failure(paths):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    check = doctor.check_library(host_for(paths), library_values("127.0.0.1", free))
    assert check.status == "warn" and f"library 127.0.0.1:{free}: cannot connect" in check.found


def test_library_probes_port_443_for_upstream_5_3_and_says_library_port_is_ignored(paths):
    asked = []
    host = host_for(paths, {"dpkg-query -W": (0, "5.3.0")})
    host.library_probe = lambda h, p: asked.append((h, p))
    check = doctor.check_library(host, library_values("lib.lan", 8443))
    assert asked == [("lib.lan", 443)]
    assert check.status == "warn" and "library lib.lan:443 answers HTTPS" in check.found
    assert "ignores library.port 8443: the library must listen on 443" in check.found
    assert doctor.check_library(host, library_values("lib.lan", 443)).status == "ok"


def test_library_is_skipped_with_invalid_settings(paths):
    assert doctor.check_library(host_for(paths), None).status == "skip"


# ---------------------------------------------------------------- hostile input: one line, never a crash
def test_a_deeply_nested_manifest_is_a_warning_naming_it_not_a_crash(paths, capsys, monkeypatch):
    from hailo_ollama_service.cli import handlers
    from hailo_ollama_service.cli import main as cli
    write(paths.manifests_dir / "evil/1b/manifest.json", "[" * 200000)
    write(paths.manifests_dir / "q/1b/manifest.json", json.dumps({"size": 1}))
    disk = doctor.check_disk(host_for(paths))
    assert disk.status == "warn" and "1 manifest(s) not read, e.g. evil/1b/manifest.json: nested" in disk.found
    monkeypatch.setattr(handlers, "_host", lambda _args: host_for(paths))
    for argv in (["doctor"], ["doctor", "--json"]):
        assert cli.main(["--root", str(paths.root), *argv]) == 1  # failures found, not 70 (internal error)
        out = capsys.readouterr().out
        assert "evil/1b/manifest.json" in out
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert checks["disk"]["status"] == "warn" and "nested" in checks["disk"]["found"]


def test_a_check_that_raises_is_one_failed_line_and_the_others_still_run(paths, monkeypatch):
    monkeypatch.delenv("HAILO_OLLAMA_DEBUG", raising=False)

    def broken(_host):
        raise RuntimeError("\x1b[2Jboom")
    monkeypatch.setattr(doctor, "check_thermal", broken)
    monkeypatch.setattr(doctor, "check_settings", lambda _host: 1 / 0)
    found = doctor.diagnose(host_for(paths))
    assert [c.id for c in found][-2:] == ["memory", "thermal"] and len(found) == 17
    thermal, settings_line = by_id(found, "thermal"), by_id(found, "settings")
    assert thermal.status == "fail" and thermal.found == "the check itself failed: RuntimeError: \\x1b[2Jboom"
    assert settings_line.status == "fail" and "ZeroDivisionError" in settings_line.found
    assert by_id(found, "memory").status == "skip"  # settings unknown: the others go on without them
    assert "\x1b" not in report.report_text(found)


def test_a_listener_on_ipv6_loopback_beside_our_server_fails_the_port_check(paths):
    from proc_helpers import PASSWD, SERVICE_UID, SESSION_CGROUP, UNIT_CGROUP, V6_LOOPBACK, listen
    write(paths.root / "etc/passwd", PASSWD)
    listen(paths.root, 11434, 77, SERVICE_UID, UNIT_CGROUP)
    assert doctor.check_port(host_for(paths), dict(DEFAULTS)).status == "ok"
    listen(paths.root, 11434, 4242, 1000, SESSION_CGROUP, comm="\x1b[8mollama", address=V6_LOOPBACK)
    check = doctor.check_port(host_for(paths), dict(DEFAULTS))
    assert check.status == "fail" and "\\x1b[8mollama (pid 4242) also listens on [::1]:11434" in check.found
    assert "kill 4242" in check.fix and "\x1b" not in report.report_text([check])


def test_a_model_list_too_deep_to_parse_leaves_the_api_check_ok_with_no_models(paths, fake_api, monkeypatch):
    def deep(*_args):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")
    monkeypatch.setattr(doctor.api, "get_json", deep)
    values = dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": fake_api.port})
    check, listed, pulled = doctor.check_api(host_for(paths), values)
    assert check.status == "ok" and listed == [] and pulled == []


# ---------------------------------------------------------------- access
ACCESS_ON = dict(DEFAULTS, **{"access.enabled": True})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "pi5.local", "::1:2", "localhost.example.org"])
def test_an_api_on_a_network_address_without_keys_warns_with_how_to_require_them(paths, host):
    check = doctor.check_access(host_for(paths), dict(DEFAULTS, **{"server.host": host}))
    assert check.status == "warn" and f"the API answers on {host}:11434 without keys" in check.found
    assert "access.enabled: true" in check.fix and "sudo apt install haproxy" in check.fix


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_an_api_on_loopback_without_keys_is_fine(paths, host):
    check = doctor.check_access(host_for(paths), dict(DEFAULTS, **{"server.host": host}))
    assert check.status == "ok" and "(this machine only)" in check.found


def test_access_on_with_the_front_down_fails_with_its_journal(paths):
    show = SHOW_ACTIVE.replace("ActiveState=active", "ActiveState=failed").replace("=running", "=failed")
    check = doctor.check_access(host_for(paths, {"systemctl show": (0, show)}), ACCESS_ON)
    assert check.status == "fail" and "hailo-ollama-access.service is failed/failed" in check.found
    assert "journalctl -u hailo-ollama-access.service" in check.fix


def test_access_on_asks_systemd_about_the_front_not_the_server(paths):
    asked = []

    def run(argv):
        asked.append(argv)
        return (0, SHOW_ACTIVE)
    check = doctor.check_access(Host(paths, run=run, is_root=False, api_timeout=0.5), ACCESS_ON)
    assert check.status == "ok" and [a[:3] for a in asked] == [["systemctl", "show", "hailo-ollama-access.service"]]


def test_access_on_with_the_front_up_but_no_key_warns_and_with_a_key_is_ok(paths):
    check = doctor.check_access(host_for(paths), ACCESS_ON)
    assert check.status == "warn" and "no API key exists" in check.found and "keys add NAME" in check.fix
    write(paths.keys_file, '{"keys": []}\n')
    check = doctor.check_access(host_for(paths), ACCESS_ON)
    assert check.status == "ok" and "keys required on 0.0.0.0:11434" in check.found


def test_access_is_skipped_without_settings_or_without_systemctl(paths):
    assert doctor.check_access(host_for(paths), None).status == "skip"
    check = doctor.check_access(host_for(paths, {"systemctl show": (1, "Failed to connect to bus")}), ACCESS_ON)
    assert check.status == "skip" and "Failed to connect to bus" in check.found


def test_with_access_on_the_api_check_asks_the_server_behind_the_front(paths, fake_api):
    values = dict(ACCESS_ON, **{"access.server_port": fake_api.port})
    check, _listed, _pulled = doctor.check_api(host_for(paths), values)
    assert check.status == "ok" and f"http://127.0.0.1:{fake_api.port} answers" in check.found
