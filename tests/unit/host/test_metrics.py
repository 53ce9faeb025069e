"""Tests of host/metrics.py: the exposition format, each probe's value, bounds, and the example alert rules.

root/publish.py, which copies the output for node_exporter, is tested in root/test_publish.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from hailo_ollama_service import __version__
from hailo_ollama_service.host import metrics
from hailo_ollama_service.host.machine import Host

from unit_helpers import write

SHOW = ("ActiveState=active\nSubState=running\nNRestarts=3\nExecMainStatus=134\nExecMainCode=2\n"
        "UnitFileState=enabled\nLoadState=loaded")


def host(paths, answers=None) -> Host:
    table = {"dpkg-query -W": (0, "5.1.1-1"), "systemctl show": (0, SHOW), "vcgencmd get_throttled": (127, "")}
    table.update(answers or {})
    return Host(paths, run=lambda argv: table.get(" ".join(argv[:2]), (127, "not found")), api_timeout=0.5)


def serve_on(paths, port: int) -> None:
    write(paths.conffile, f"server:\n  host: 127.0.0.1\n  port: {port}\n")


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_every_family_has_help_and_type_and_labels_are_escaped():
    fam = metrics.Family("hailo_ollama_x", "gauge", 'say "hi"\\now').add(1, model='a"b\\c\nd')
    text = metrics.exposition([fam, metrics.Family("hailo_ollama_empty", "gauge", "no samples")])
    assert text == ('# HELP hailo_ollama_x say "hi"\\\\now\n# TYPE hailo_ollama_x gauge\n'
                    'hailo_ollama_x{model="a\\"b\\\\c\\nd"} 1\n')


def test_promtool_accepts_the_output_of_a_live_server(paths, standin):
    if not shutil.which("promtool"):
        if os.environ.get("CI"):
            pytest.fail("promtool (package prometheus) is needed under CI")
        pytest.skip("promtool (package prometheus) not installed")
    serve_on(paths, standin.port)
    text = metrics.exposition(metrics.collect(host(paths)))
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_a_live_server_is_up_with_its_models_and_nothing_loaded(paths, standin):
    serve_on(paths, standin.port)
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_up"] == 1
    assert found["hailo_ollama_models_available"] == 5 and found["hailo_ollama_models_downloaded"] == 0
    assert found["hailo_ollama_model_loaded_known"] == 1
    assert not any(k.startswith("hailo_ollama_model_loaded{") for k in found)
    build = f'hailo_ollama_build_info{{generation="5.1",upstream_version="5.1.1-1",version="{__version__}"}}'
    assert found[build] == 1


def test_a_stopped_server_is_down_and_its_model_figures_are_left_out(paths):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        serve_on(paths, sock.getsockname()[1])
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_up"] == 0
    assert "hailo_ollama_models_available" not in found and "hailo_ollama_model_loaded_known" not in found


def test_the_units_restarts_are_a_counter_and_its_last_exit_status_a_gauge(paths):
    text = metrics.exposition(metrics.collect(host(paths)))
    assert "# TYPE hailo_ollama_unit_restarts_total counter\nhailo_ollama_unit_restarts_total 3\n" in text
    found = samples(text)
    assert found["hailo_ollama_unit_last_exit_status"] == 134 and found["hailo_ollama_unit_active"] == 1


def test_without_systemd_the_unit_figures_are_left_out(paths):
    found = samples(metrics.exposition(metrics.collect(host(paths, {"systemctl show": (1, "no bus")}))))
    assert not any(k.startswith("hailo_ollama_unit_") for k in found)


def test_a_refused_edit_flips_settings_valid_to_0(paths):
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_settings_valid"] == 1
    write(paths.conffile, "server:\n  port: nope\n")
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_settings_valid"] == 0


def test_device_present_and_usable_follow_the_node_and_its_mode(paths):
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_device_present"] == 0 and found["hailo_ollama_device_usable"] == 0
    node = write(paths.root / "dev/hailo0", "")
    os.chmod(node, 0o666)
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_device_present"] == 1
    os.chmod(node, 0o600)
    os.chown(node, 0, 0) if os.geteuid() == 0 else None
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_device_present"] == 1 and found["hailo_ollama_device_usable"] == 0


def test_temperature_and_each_throttling_flag_come_from_the_pis_files(paths):
    write(paths.root / "sys/class/thermal/thermal_zone0/temp", "61234\n")
    write(paths.root / "sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_soc_temperature_celsius"] == pytest.approx(61.234)
    assert found['hailo_ollama_throttled{condition="under-voltage"}'] == 1
    assert found['hailo_ollama_throttled{condition="throttled"}'] == 1
    assert found['hailo_ollama_throttled{condition="arm_frequency_capped"}'] == 0
    assert found['hailo_ollama_throttled{condition="under-voltage_occurred"}'] == 1


def test_off_a_pi_temperature_and_throttling_are_left_out(paths):
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert "hailo_ollama_soc_temperature_celsius" not in found
    assert not any(k.startswith("hailo_ollama_throttled") for k in found)


def test_free_bytes_are_those_of_the_models_file_system(paths):
    paths.models_dir.mkdir(parents=True)
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    info = os.statvfs(paths.models_dir)
    assert abs(found["hailo_ollama_models_free_bytes"] - info.f_bavail * info.f_frsize) < 64 * 1024 ** 2


def test_an_api_that_accepts_and_never_answers_does_not_hang_the_command(paths):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        serve_on(paths, silent.getsockname()[1])
        start = time.monotonic()
        found = samples(metrics.exposition(metrics.collect(host(paths))))
        assert time.monotonic() - start < 10
    assert found["hailo_ollama_up"] == 0


def test_a_generation_in_progress_makes_the_loaded_model_unknown_not_a_wait(paths, fake_api, monkeypatch):
    serve_on(paths, fake_api.port)
    calls = []

    def slow_ps(address, port, path, timeout):
        calls.append((path, timeout))
        raise socket.timeout("timed out")
    real = metrics.api.get_json
    monkeypatch.setattr(metrics.api, "get_json",
                        lambda a, p, path, t: slow_ps(a, p, path, t) if path == "/api/ps" else real(a, p, path, t))
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_model_loaded_known"] == 0 and calls == [("/api/ps", metrics.PS_TIMEOUT)]


@pytest.mark.parametrize("answer", [RecursionError("maximum recursion depth exceeded"), (200, {"models": 5}),
                                    (200, [1, 2])])
def test_a_hostile_api_ps_answer_makes_the_loaded_model_unknown_not_a_crash(paths, fake_api, monkeypatch, answer):
    serve_on(paths, fake_api.port)
    real = metrics.api.get_json

    def hostile_ps(address, port, path, timeout):
        if path != "/api/ps":
            return real(address, port, path, timeout)
        if isinstance(answer, Exception):
            raise answer
        return answer
    monkeypatch.setattr(metrics.api, "get_json", hostile_ps)
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found["hailo_ollama_up"] == 1 and found["hailo_ollama_model_loaded_known"] == 0


def test_a_loaded_model_is_a_labelled_sample(paths, fake_api, monkeypatch):
    serve_on(paths, fake_api.port)
    real = metrics.api.get_json
    monkeypatch.setattr(metrics.api, "get_json", lambda a, p, path, t: (200, {"models": [{"name": "qwen2:1.5b"}]})
                        if path == "/api/ps" else real(a, p, path, t))
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert found['hailo_ollama_model_loaded{model="qwen2:1.5b"}'] == 1


RULES = Path(__file__).resolve().parents[3] / "examples/prometheus/hailo-ollama-alerts.yml"


def test_the_example_alert_rules_pass_promtool():
    if not shutil.which("promtool"):
        if os.environ.get("CI"):
            pytest.fail("promtool (package prometheus) is needed under CI")
        pytest.skip("promtool (package prometheus) not installed")
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_alert_rules_use_only_metrics_the_command_exports(paths):
    import re
    names = set(re.findall(r"\b(hailo_ollama_[a-z_]+)\b", RULES.read_text()))
    write(paths.root / "sys/class/thermal/thermal_zone0/temp", "50000\n")
    write(paths.root / "sys/devices/platform/soc/soc:firmware/get_throttled", "0\n")
    exported = {line.split()[2] for line in metrics.exposition(metrics.collect(host(paths))).splitlines()
                if line.startswith("# TYPE")}
    assert names and names <= exported, names - exported


def units(paths, front: str | None) -> Host:
    """A host whose server unit is active and whose front unit answers ``front`` (None: never asked)."""
    def run(argv):
        if argv[:2] == ["systemctl", "show"] and argv[2] == "hailo-ollama-access.service":
            assert front is not None, "the front's unit was asked about while access is off"
            return (0, front)
        return {"dpkg-query -W": (0, "5.1.1-1"), "systemctl show": (0, SHOW)}.get(" ".join(argv[:2]), (127, ""))
    return Host(paths, run=run, api_timeout=0.5)


def test_access_off_is_0_and_the_front_is_not_asked_about(paths):
    found = samples(metrics.exposition(metrics.collect(units(paths, None))))
    assert found["hailo_ollama_access_enabled"] == 0 and found["hailo_ollama_access_front_up"] == 0


@pytest.mark.parametrize("state, up", [("active", 1), ("failed", 0), ("inactive", 0)])
def test_access_on_is_1_and_the_front_is_up_only_while_its_unit_is_active(paths, state, up):
    write(paths.conffile, "access:\n  enabled: true\n")
    front = SHOW.replace("ActiveState=active", f"ActiveState={state}")
    found = samples(metrics.exposition(metrics.collect(units(paths, front))))
    assert found["hailo_ollama_access_enabled"] == 1 and found["hailo_ollama_access_front_up"] == up
    assert found["hailo_ollama_unit_active"] == 1  # the server's own unit is not the front's


def test_the_front_is_down_when_systemctl_cannot_tell(paths):
    write(paths.conffile, "access:\n  enabled: true\n")
    table = {"systemctl show": (1, "no bus")}
    found = samples(metrics.exposition(metrics.collect(host(paths, table))))
    assert found["hailo_ollama_access_enabled"] == 1 and found["hailo_ollama_access_front_up"] == 0


def test_the_access_families_are_gauges_and_left_out_without_any_settings_to_read(paths):
    text = metrics.exposition(metrics.collect(host(paths)))
    for name in ("hailo_ollama_access_enabled", "hailo_ollama_access_front_up"):
        assert f"# TYPE {name} gauge\n" in text
    write(paths.conffile, "server:\n  port: nope\n")  # no render yet: nothing is served
    found = samples(metrics.exposition(metrics.collect(host(paths))))
    assert "hailo_ollama_access_enabled" not in found and "hailo_ollama_access_front_up" not in found


def test_with_access_on_up_is_asked_of_the_server_behind_the_front(paths, fake_api):
    write(paths.conffile, f"access:\n  enabled: true\n  server_port: {fake_api.port}\n")
    found = samples(metrics.exposition(metrics.collect(units(paths, SHOW))))
    assert found["hailo_ollama_up"] == 1
