"""Tests of cli/main.py: subcommands, exit statuses, one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hailo_ollama_service import __version__
from hailo_ollama_service.cli import main as cli

from unit_helpers import fake_haproxy, tree, write

REPO = Path(__file__).resolve().parents[3]


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python3 -m hailo_ollama_service --root ROOT ARGS`` from the source tree."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("HAILO_OLLAMA_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "hailo_ollama_service", "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_the_module_runs_from_the_source_tree_and_knows_its_version(tmp_path):
    done = run(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"hailo-ollama-service {__version__}"


@pytest.mark.parametrize("command", ["render", "sync-models", "check", "config", "debconf-layer", "wait-ready",
                                     "preflight", "postinst-report", "warmup", "keys"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    assert "usage: hailo-ollama-service" in capsys.readouterr().out


def test_render_reports_changed_files_then_unchanged(tmp_path):
    first = run(tmp_path, "render")
    assert first.returncode == 0, first.stderr
    assert f"changed: {tmp_path}/etc/xdg/hailo-ollama/hailo-ollama.json" in first.stdout.splitlines()
    second = run(tmp_path, "render")
    assert (second.returncode, second.stdout) == (0, "unchanged\n")


def test_sync_models_mirrors_the_manifests_and_then_reports_unchanged(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as the service user: in this process
    write(tmp_path / "usr/share/hailo-ollama/models/manifests/qwen2/1.5b/manifest.json", "{}")
    (tmp_path / "var/lib/hailo-ollama").mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "sync-models"]) == 0
    mirrored = tmp_path / "var/lib/hailo-ollama/models/manifests/qwen2/1.5b/manifest.json"
    assert f"changed: {mirrored}" in capsys.readouterr().out.splitlines()
    assert cli.main(["--root", str(tmp_path), "sync-models"]) == 0
    assert capsys.readouterr().out == "unchanged\n"


def test_sync_models_with_a_link_in_the_layout_fails_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (tmp_path / "var/lib/hailo-ollama").mkdir(parents=True)
    (tmp_path / "var/lib/hailo-ollama/models").symlink_to(tmp_path)
    assert cli.main(["--root", str(tmp_path), "sync-models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "models: a symbolic link or not a directory; refusing to use it" in err


BAD = {
    "malformed": ("server:\n  port: [\n", "malformed YAML"),
    "list": ("- 1\n", "not a list"),
    "unknown key": ("server:\n  prot: 1\n", "did you mean 'port'?"),
    "string port": ('server:\n  port: "1"\n', "server.port"),
    "port range": ("server:\n  port: 65536\n", "server.port"),
    "poll range": ("main_poll_time_ms: 0\n", "main_poll_time_ms"),
    "host": ('server:\n  host: "a b"\n', "server.host"),
    "memory": ('resource_limits:\n  memory_max: "lots"\n', "memory_max"),
    "cpu": ('resource_limits:\n  cpu_quota: "half"\n', "cpu_quota"),
    "utf8": (b"server:\n  host: \xff\n", "UTF-8"),
    "huge": ("#" * (1024 * 1024 + 10), "1 MiB"),
    "laughs": ("a: &a [x, x]\nb: [*a, *a]\n", "aliases"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_input_makes_render_fail_with_one_line_and_write_nothing(tmp_path, name):
    text, fragment = BAD[name]
    conffile = write(tmp_path / "etc/hailo/hailo-ollama.yaml", text)
    before = tree(tmp_path)
    done = run(tmp_path, "render")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"hailo-ollama-service: error: {conffile}")
    assert fragment in lines[0]
    after = tree(tmp_path)
    after.pop("run/hailo-ollama/render.lock", None)
    assert after == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_input_makes_check_fail_with_the_same_line(tmp_path, name):
    text, fragment = BAD[name]
    write(tmp_path / "etc/hailo/hailo-ollama.yaml", text)
    done = run(tmp_path, "check")
    assert done.returncode == 1 and fragment in done.stderr and len(done.stderr.splitlines()) == 1


def test_render_with_keep_last_good_exits_0_and_logs_the_error(tmp_path):
    assert run(tmp_path, "render").returncode == 0
    write(tmp_path / "etc/hailo/hailo-ollama.yaml", "server:\n  port: 0\n")
    done = run(tmp_path, "render", "--keep-last-good")
    assert done.returncode == 0
    assert done.stdout == "unchanged\n"
    assert "hailo-ollama.yaml:2: server.port" in done.stderr
    assert "keeping the last good configuration" in done.stderr


def test_render_with_keep_last_good_and_nothing_earlier_fails(tmp_path):
    write(tmp_path / "etc/hailo/hailo-ollama.yaml", "server:\n  port: 0\n")
    done = run(tmp_path, "render", "--keep-last-good")
    assert done.returncode == 1
    assert "no earlier good configuration" in done.stderr


def test_check_validates_a_single_file_or_value(tmp_path):
    good = write(tmp_path / "good.yaml", "server:\n  port: 1\n")
    bad = write(tmp_path / "bad.yaml", "server:\n  port: 0\n")
    assert run(tmp_path, "check", str(good)).stdout == "ok\n"
    assert run(tmp_path, "check", str(bad)).returncode == 1
    assert run(tmp_path, "check", "--value", "server.port=11500").returncode == 0
    done = run(tmp_path, "check", "--value", "server.port=x")
    assert done.returncode == 1 and "server.port" in done.stderr


def test_config_shows_values_and_sources_as_text_json_and_for_debconf(tmp_path):
    conffile = write(tmp_path / "etc/hailo/hailo-ollama.yaml", "server:\n  port: 11600\n")
    layer = write(tmp_path / "etc/hailo/hailo-ollama.d/00-debconf.yaml", "server:\n  host: 127.0.0.1\n")
    text = run(tmp_path, "config").stdout
    assert any(line.split()[:3] == ["server.port", "11600", str(conffile)] for line in text.splitlines())
    doc = json.loads(run(tmp_path, "config", "--json").stdout)
    assert doc["server.host"] == {"value": "127.0.0.1", "source": str(layer)}
    assert doc["library.port"] == {"value": 443, "source": "default"}
    lines = run(tmp_path, "config", "--debconf").stdout.splitlines()
    assert "port|11600|conffile" in lines
    assert "host|127.0.0.1|debconf" in lines
    assert "warmup-model||default" in lines


def test_debconf_layer_prints_yaml_that_reads_back(tmp_path):
    done = run(tmp_path, "debconf-layer", "server.port=11500", "server.host=::", "warmup.model=")
    assert done.returncode == 0
    layer = write(tmp_path / "etc/hailo/hailo-ollama.d/00-debconf.yaml", done.stdout)
    doc = json.loads(run(tmp_path, "config", "--json").stdout)
    assert doc["server.port"] == {"value": 11500, "source": str(layer)}
    assert doc["server.host"]["value"] == "::"


def test_debconf_layer_refuses_an_invalid_answer_in_one_line(tmp_path):
    done = run(tmp_path, "debconf-layer", "server.port=99999")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("hailo-ollama-service: error: server.port: "
                                   "must be from 1 to 65535, not 99999")


def test_an_unknown_subcommand_is_a_usage_error(tmp_path):
    assert run(tmp_path, "frobnicate").returncode == 2


def test_an_internal_error_is_one_line_without_traceback(monkeypatch, capsys, tmp_path):
    from hailo_ollama_service.config import load as settings

    def broken(_paths):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(settings, "load", broken)
    monkeypatch.delenv("HAILO_OLLAMA_DEBUG", raising=False)
    assert cli.main(["--root", str(tmp_path), "config"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError: boom" in err and "Traceback" not in err


def test_preflight_always_succeeds_and_names_what_is_missing(tmp_path):
    done = run(tmp_path, "preflight")
    assert done.returncode == 0
    assert "/usr/bin/hailo-ollama is missing" in done.stderr
    assert "no Hailo device" in done.stderr


def pin_port(root: Path, port: int) -> None:
    write(root / "etc/hailo/hailo-ollama.yaml", f"server:\n  host: 127.0.0.1\n  port: {port}\n")


def test_wait_ready_exits_0_when_the_configured_api_answers(tmp_path, fake_api):
    pin_port(tmp_path, fake_api.port)
    done = run(tmp_path, "wait-ready", "--timeout", "5")
    assert done.returncode == 0
    assert done.stdout == f"http://127.0.0.1:{fake_api.port} answers (version 0.5.1)\n"


def test_wait_ready_exits_1_in_bounded_time_when_the_api_never_answers(tmp_path):
    import socket
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        pin_port(tmp_path, silent.getsockname()[1])
        done = run(tmp_path, "wait-ready", "--timeout", "1")
    assert done.returncode == 1
    assert "no answer from" in done.stderr and "within 1 s" in done.stderr


def test_postinst_report_prints_the_url_or_the_journalctl_hint_and_always_exits_0(tmp_path, fake_api):
    pin_port(tmp_path, fake_api.port)
    good = run(tmp_path, "postinst-report", "--timeout", "5")
    assert good.returncode == 0 and f"running: http://127.0.0.1:{fake_api.port}" in good.stdout
    fake_api.close()
    bad = run(tmp_path, "postinst-report", "--timeout", "0.5")
    assert bad.returncode == 0
    assert "journalctl -u hailo-ollama.service -n 100 --no-pager" in bad.stderr


def test_wait_ready_gives_up_at_once_when_the_servers_process_has_exited(tmp_path):
    import time
    pin_port(tmp_path, 1)
    dead = subprocess.Popen(["true"])
    dead.wait()
    start = time.monotonic()
    done = run(tmp_path, "wait-ready", "--timeout", "30", "--pid", str(dead.pid))
    assert done.returncode == 1 and time.monotonic() - start < 10
    assert f"the server (pid {dead.pid}) exited before its API answered" in done.stderr


def test_wait_ready_probes_where_the_server_process_listens_not_the_newest_settings(tmp_path, fake_api):
    pin_port(tmp_path, 1)  # settings edited since the server started: they name another port
    done = run(tmp_path, "wait-ready", "--timeout", "10", "--pid", str(os.getpid()))
    assert done.returncode == 0, done.stderr


def test_wait_ready_uses_the_last_good_settings_while_the_conffile_is_invalid(tmp_path, fake_api):
    pin_port(tmp_path, fake_api.port)
    assert run(tmp_path, "render").returncode == 0
    write(tmp_path / "etc/hailo/hailo-ollama.yaml", "server:\n  port: [\n")
    done = run(tmp_path, "wait-ready", "--timeout", "5")
    assert done.returncode == 0, done.stderr


def test_wait_ready_reads_mainpid_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAINPID", "4242")
    args = cli.build_parser().parse_args(["wait-ready"])
    assert args.pid == 4242
    monkeypatch.delenv("MAINPID")
    assert cli.build_parser().parse_args(["wait-ready"]).pid is None


def test_postinst_report_does_not_wait_while_another_program_holds_the_port(tmp_path):
    import socket
    import time
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(8)  # accepts, never answers: held by "python3" (this test)
        conffile = write(tmp_path / "hailo-ollama.yaml",
                         f"server:\n  host: 127.0.0.1\n  port: {squatter.getsockname()[1]}\n")
        # The real /proc shows who holds the port: root "/" with the conffile moved aside.
        env = dict(os.environ, PYTHONPATH=str(REPO), HAILO_OLLAMA_CONFIG=str(conffile))
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "hailo_ollama_service", "--root", "/",
                               "postinst-report", "--timeout", "30"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and time.monotonic() - start < 10
    assert "while another program holds port" in done.stderr and "journalctl" in done.stderr


def test_metrics_writes_its_output_atomically_when_asked(tmp_path, capsys):
    out = tmp_path / "run/metrics/hailo-ollama.prom"
    out.parent.mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "metrics", "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert "# TYPE hailo_ollama_up gauge\n" in out.read_text()


def test_metrics_publish_copies_then_removes_the_textfile(tmp_path):
    source = write(tmp_path / "run/hailo-ollama.prom", "hailo_ollama_up 1\n")
    target = tmp_path / "var/lib/prometheus/node-exporter"
    target.mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "metrics-publish", "--from", str(source)]) == 0
    assert (target / "hailo-ollama.prom").read_text() == "hailo_ollama_up 1\n"
    assert cli.main(["--root", str(tmp_path), "metrics-publish", "--remove"]) == 0
    assert os.listdir(target) == []
    target.rmdir()
    assert cli.main(["--root", str(tmp_path), "metrics-publish", "--remove"]) == 0  # no node_exporter: fine


def test_metrics_publish_of_junk_fails_with_one_line(tmp_path, capsys):
    source = write(tmp_path / "run/hailo-ollama.prom", "rm -rf /\n")
    (tmp_path / "var/lib/prometheus/node-exporter").mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "metrics-publish", "--from", str(source)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a hailo_ollama_ metric line; nothing published" in err


# ---------------------------------------------------------------- keys
@pytest.fixture
def systemctl(monkeypatch):
    """The systemctl calls of the render that ``keys`` runs (none reach the host's systemd)."""
    from hailo_ollama_service.root import apply
    calls: list[list[str]] = []
    monkeypatch.setattr(apply.apply, "__defaults__", (calls.append, 20))
    return calls


def keys(root: Path, *args: str) -> int:
    return cli.main(["--root", str(root), "keys", *args])


def test_keys_add_prints_the_new_key_alone_on_stdout_and_a_note_while_access_is_off(tmp_path, capsys, systemctl):
    import re
    assert keys(tmp_path, "add", "alice") == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"hos_[A-Za-z0-9_-]{43}\n", out)
    assert "note: access is off" in err and out.strip() not in err
    stored = json.loads((tmp_path / "var/lib/hailo-ollama-service/api-keys.json").read_text())["keys"]
    assert [(k["name"], k["role"]) for k in stored] == [("alice", "user")]


def test_keys_add_with_access_on_renders_the_map_and_reloads_the_front(tmp_path, capsys, systemctl):
    from hailo_ollama_service.config.paths import make_paths
    paths = make_paths(tmp_path, environ={})
    fake_haproxy(paths)
    write(paths.conffile, "access:\n  enabled: true\n")
    assert cli.main(["--root", str(tmp_path), "render"]) == 0
    capsys.readouterr()
    systemctl.clear()
    assert keys(tmp_path, "add", "ops", "--admin") == 0
    out, err = capsys.readouterr()
    assert err == "" and systemctl == [["reload-or-restart", "hailo-ollama-access.service"]]
    digest = hashlib.sha256(out.strip().encode()).hexdigest()
    assert f"{digest} admin" in (paths.access_dir / "keys.map").read_text().splitlines()


def test_keys_add_by_digest_prints_added_then_unchanged(tmp_path, capsys, systemctl):
    digest = "ab" * 32
    assert keys(tmp_path, "add", "fleet", "--sha256", digest) == 0
    assert capsys.readouterr().out == "added fleet\n"
    assert keys(tmp_path, "add", "fleet", "--sha256", digest) == 0
    assert capsys.readouterr().out == "unchanged fleet\n"
    assert keys(tmp_path, "add", "fleet", "--sha256", digest, "--admin") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "a key named 'fleet' exists (user); revoke it first" in err


def test_keys_list_shows_name_role_date_and_the_start_of_the_digest_then_revoke_removes_it(tmp_path, capsys,
                                                                                          systemctl):
    keys(tmp_path, "add", "fleet", "--sha256", "ab" * 32)
    capsys.readouterr()
    assert keys(tmp_path, "list") == 0
    [line] = capsys.readouterr().out.splitlines()
    name, role, created, short = line.split("\t")
    assert (name, role, short) == ("fleet", "user", "sha256:abababababab") and created.endswith("Z")
    assert keys(tmp_path, "revoke", "fleet") == 0
    assert capsys.readouterr().out == "revoked fleet\n"
    assert keys(tmp_path, "list") == 0 and capsys.readouterr().out == ""
    assert keys(tmp_path, "revoke", "fleet") == 1
    assert "error: no key named 'fleet'" in capsys.readouterr().err


@pytest.mark.parametrize("args", [("add",), ("list", "alice"), ("revoke",), ("revoke", "alice", "--admin"),
                                  ("list", "--sha256", "ab" * 32), ("rotate", "alice")])
def test_keys_usage_errors_exit_2_and_change_nothing(tmp_path, capsys, systemctl, args):
    assert keys(tmp_path, *args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: hailo-ollama-service keys add NAME" in err
    assert tree(tmp_path) == {} and systemctl == []


def test_keys_as_another_user_without_root_is_refused(monkeypatch, capsys, systemctl):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("HAILO_OLLAMA_ROOT", raising=False)
    assert cli.main(["keys", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "error: the API keys are root's: run it with sudo" in err


def test_keys_with_a_bad_name_is_one_line_and_stores_nothing(tmp_path, capsys, systemctl):
    assert keys(tmp_path, "add", "a b") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "key name 'a b'" in err
    assert not (tmp_path / "var/lib/hailo-ollama-service/api-keys.json").exists()
