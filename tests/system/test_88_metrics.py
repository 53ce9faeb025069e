"""Prometheus metrics through node_exporter's textfile collector, on a booted system.

One container of its own: the stand-in and the package are installed
first without node_exporter (the metrics unit must then be skipped and
write nothing), then Debian's prometheus-node-exporter (downloaded on the
host, installed from the file: the container has no network). Scrapes go
to node_exporter's :9100 from the host, as a fleet's Prometheus would.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import harness
import product

pytestmark = pytest.mark.system

TIMER = "hailo-ollama-metrics.timer"
SERVICE = "hailo-ollama-metrics.service"
TEXTFILE = "/var/lib/prometheus/node-exporter/hailo-ollama.prom"
EXPORTER = "prometheus-node-exporter"


@pytest.fixture(scope="module")
def exporter_deb(tmp_path_factory):
    """Debian's prometheus-node-exporter .deb, downloaded on the host."""
    where = tmp_path_factory.mktemp("exporter")
    done = subprocess.run(["apt-get", "download", EXPORTER], cwd=where, capture_output=True, text=True)
    found = sorted(where.glob(f"{EXPORTER}_*.deb"))
    if done.returncode != 0 or not found:
        pytest.fail(f"apt-get download {EXPORTER} failed (run apt-get update first): {done.stderr[-2000:]}",
                    pytrace=False)
    return found[-1]


@pytest.fixture(scope="module")
def pi(base_root, hos_deb, standin_debs, debs):
    """A booted container with the stand-in and the package, no node_exporter yet."""
    c = harness.Container("metrics", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs, "5.1.1")
        r = product.apt_install(c, hos_deb)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        yield c
    finally:
        c.destroy()


def run_metrics(c) -> None:
    """Start the oneshot that the timer starts, and wait for it to end."""
    r = c.systemctl("start", SERVICE, timeout=90)
    assert r.rc == 0, r.output + c.journal(unit=SERVICE, lines=30)


def scrape(c) -> str:
    status, body = c.http("GET", "/metrics", port=9100, timeout=10)
    assert status == 200, body[:500]
    return body


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert match, f"{series} not in the scrape:\n" + "\n".join(
        line for line in text.splitlines() if "hailo_ollama" in line)
    return float(match.group(1))


def test_without_node_exporter_the_metrics_unit_is_skipped_and_writes_nothing(pi):
    assert product.is_active(pi, TIMER) == "active" and product.is_enabled(pi, TIMER) == "enabled"
    pi.systemctl("start", SERVICE, timeout=60)
    assert pi.unit_property(SERVICE, "ConditionResult") == "no"
    assert pi.unit_property(SERVICE, "ExecMainStartTimestampMonotonic") in ("0", "")
    assert not pi.exists("/var/lib/prometheus")
    assert not pi.exec(["find", "/run", "/var/lib", "-name", "hailo-ollama.prom"]).stdout.strip()


def test_after_the_timer_has_run_node_exporter_serves_the_hailo_ollama_series(pi, exporter_deb, hos_deb):
    r = product.apt_install(pi, exporter_deb)
    assert r.rc == 0, r.output
    pi.add_device("/dev/hailo0", mode="0666")
    # the timer itself (OnBootSec=1min, then every minute) writes the file
    assert product.wait_for(lambda: pi.exists(TEXTFILE), 150, interval=1), pi.journal(unit=SERVICE, lines=40)
    assert product.wait_for(lambda: "hailo_ollama_up" in scrape(pi), 30, interval=1)
    run_metrics(pi)
    text = scrape(pi)
    version = product.deb_field(hos_deb, "Version")
    labels = f'generation="5.1",upstream_version="5.1.1-1",version="{version}"'
    assert value(text, f"hailo_ollama_build_info{{{labels}}}") == 1
    assert value(text, "hailo_ollama_up") == 1
    assert value(text, "hailo_ollama_settings_valid") == 1
    assert value(text, "hailo_ollama_unit_active") == 1
    assert value(text, "hailo_ollama_models_available") == len(product.shipped_models(pi))
    assert value(text, "hailo_ollama_models_downloaded") == len(product.tag_names(pi))
    assert value(text, "hailo_ollama_model_loaded_known") == 1
    assert value(text, "hailo_ollama_device_present") == 1 and value(text, "hailo_ollama_device_usable") == 1
    assert value(text, "hailo_ollama_models_free_bytes") > 0
    assert value(text, "hailo_ollama_unit_restarts_total") >= 0
    info = pi.exec(["stat", "-c", "%U:%G %a", TEXTFILE]).stdout.strip()
    assert info == "root:root 644", info


def test_promtool_accepts_the_scrape(pi):
    if not shutil.which("promtool"):
        pytest.fail("promtool (package prometheus) is needed", pytrace=False)
    text = scrape(pi)
    # The whole scrape parses; node_exporter's own names draw lint remarks
    # (camelCase /proc fields), none of ours may.
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    report = done.stdout + done.stderr
    assert "error while linting" not in report, report[-2000:]
    assert "hailo_ollama" not in report, report
    ours = "".join(line + "\n" for line in text.splitlines()
                   if line.startswith(("hailo_ollama_", "# HELP hailo_ollama_", "# TYPE hailo_ollama_")))
    assert ours.count("# TYPE") >= 10
    done = subprocess.run(["promtool", "check", "metrics"], input=ours, capture_output=True, text=True)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_stopping_the_service_flips_the_api_metric_at_the_next_run(pi):
    pi.systemctl("stop", product.UNIT, check=True)
    try:
        run_metrics(pi)
        text = scrape(pi)
        assert value(text, "hailo_ollama_up") == 0 and value(text, "hailo_ollama_unit_active") == 0
    finally:
        pi.systemctl("start", product.UNIT, check=True, timeout=120)
    run_metrics(pi)
    assert value(scrape(pi), "hailo_ollama_up") == 1


def test_an_invalid_conffile_flips_the_settings_metric(pi):
    shipped = pi.read_file(product.CONFFILE)
    product.write_conffile(pi, shipped + "\nserver:\n  port: not-a-port\n", how="cp")
    product.settle(pi)
    try:
        run_metrics(pi)
        text = scrape(pi)
        assert value(text, "hailo_ollama_settings_valid") == 0
        assert value(text, "hailo_ollama_up") == 1  # the last good configuration keeps serving
    finally:
        product.write_conffile(pi, shipped, how="cp")
        product.settle(pi)
    run_metrics(pi)
    assert value(scrape(pi), "hailo_ollama_settings_valid") == 1


def exposure(c, unit: str) -> float:
    out = c.exec(["systemd-analyze", "security", unit, "--no-pager"], check=False).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out[-800:]
    return float(match.group(1))


def test_the_metrics_sandbox_is_at_least_as_tight_as_the_warm_ups(pi):
    assert exposure(pi, SERVICE) <= exposure(pi, "hailo-ollama-warmup.service")


def test_removing_the_package_takes_its_metrics_out_of_node_exporter(pi, hos_deb):
    assert pi.exists(TEXTFILE)
    r = product.apt(pi, "remove", product.PACKAGE)
    assert r.rc == 0, r.output
    assert not pi.exists(TEXTFILE)
    assert "hailo_ollama_up" not in scrape(pi)
    r = product.apt_install(pi, hos_deb)
    assert r.rc == 0, r.output
