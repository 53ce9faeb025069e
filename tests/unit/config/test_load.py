"""Tests of config/load.py: strict parsing, one-line errors, layering."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hailo_ollama_service.config import load as settings
from hailo_ollama_service.config.load import ConfigError

from unit_helpers import write

REPO = Path(__file__).resolve().parents[3]


def error_of(text: str | bytes, tmp_path: Path) -> ConfigError:
    path = write(tmp_path / "hailo-ollama.yaml", text)
    with pytest.raises(ConfigError) as caught:
        settings.read_layer(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return caught.value


BAD_INPUTS = [
    # (name, text, line, key, message fragment)
    ("malformed yaml", "server:\n  port: [1, 2\n", 3, None, "malformed YAML"),
    ("tab indentation", "server:\n\tport: 1\n", 2, None, "malformed YAML"),
    ("a top-level list", "- server\n- port\n", 1, None, "must be a mapping of settings, not a list"),
    ("a top-level scalar", "11434\n", 1, None, "not a single value"),
    ("an unknown section", "sever:\n  port: 1\n", 1, "sever", "did you mean 'server'?"),
    ("an unknown key", "server:\n  prot: 1\n", 2, "server.prot", "did you mean 'port'?"),
    ("an unknown key far from any", "server:\n  zzz: 1\n", 2, "server.zzz", "unknown setting"),
    ("a string port", 'server:\n  port: "11434"\n', 2, "server.port", "not the string '11434'"),
    ("a bool port", "server:\n  port: yes\n", 2, "server.port", "not the boolean true"),
    ("a port of 0", "server:\n  port: 0\n", 2, "server.port", "from 1 to 65535, not 0"),
    ("a port of 70000", "server:\n  port: 70000\n", 2, "server.port", "not 70000"),
    ("a list as port", "server:\n  port: [1]\n", 2, "server.port", "not a list"),
    ("a library port of 65536", "library:\n  port: 65536\n", 2, "library.port", "not 65536"),
    ("a poll time of 0", "main_poll_time_ms: 0\n", 1, "main_poll_time_ms", "from 1 to 65535"),
    ("a poll time of 70000", "\nmain_poll_time_ms: 70000\n", 2, "main_poll_time_ms", "not 70000"),
    ("a bad host", 'server:\n  host: "not a host"\n', 2, "server.host", "IPv4 or IPv6 address"),
    ("a bad library host", 'library:\n  host: "http://x"\n', 2, "library.host", "host name"),
    ("a bad memory size", 'resource_limits:\n  memory_max: "4GB"\n', 2,
     "resource_limits.memory_max", "size like 512M"),
    ("a bad cpu quota", 'resource_limits:\n  cpu_quota: "80"\n', 2,
     "resource_limits.cpu_quota", "percentage"),
    ("a section given as a scalar", "server: 5\n", 1, "server", "must be a mapping of host, port"),
    ("a key set twice", "server:\n  port: 1\n  port: 2\n", 3, "server.port", "set twice"),
    ("a python tag", "server:\n  port: !!python/object/apply:os.system [id]\n", 2, "server.port",
     "unsupported YAML tag"),
    ("a non-string key", "1: 2\n", 1, None, "keys must be plain names"),
    ("an alias", "server: &s\n  port: 1\nlibrary: *s\n", 3, None, "aliases"),
    ("a bad network", 'access:\n  networks: "10.0.0.5, 10.0.0.0/33"\n', 2, "access.networks", "not '10.0.0.0/33'"),
    ("a bare off as tls mode", "access:\n  enabled: true\n  tls: off\n", 3, "access.tls",
     '"off", "snakeoil" or "own" in quotes'),
    ("an unknown tls mode", "access:\n  tls: letsencrypt\n", 2, "access.tls", "one of off, snakeoil, own"),
    ("a relative certificate", "access:\n  tls_certificate: pi.pem\n", 2, "access.tls_certificate", "absolute path"),
    ("access as a string", 'access:\n  enabled: "yes"\n', 2, "access.enabled", "must be true or false"),
    ("a bad allowlist", 'models:\n  allowed: "qwen2:1.5b,,x"\n', 2, "models.allowed", "empty entry"),
]


@pytest.mark.parametrize("name,text,line,key,fragment", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_gets_a_one_line_error_naming_file_line_and_key(tmp_path, name, text, line, key, fragment):
    err = error_of(text, tmp_path)
    assert err.line == line
    assert err.key == key
    assert fragment in str(err)
    if key:
        assert f":{line}: {key}: " in str(err)


def test_non_utf8_bytes_are_refused_with_their_line(tmp_path):
    err = error_of(b"server:\n  host: \"caf\xe9\"\n", tmp_path)
    assert err.line == 2
    assert "not valid UTF-8 (byte 0xe9)" in str(err)


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path):
    err = error_of("#" * (1024 * 1024) + "\n", tmp_path)
    assert "larger than 1 MiB" in str(err)


def test_a_billion_laughs_file_is_refused_fast(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    start = time.monotonic()
    err = error_of("\n".join(lines) + "\n", tmp_path)
    assert "aliases" in str(err)
    assert time.monotonic() - start < 5  # generous bound: expanding would never finish


def test_an_unreadable_file_is_reported_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        settings.read_layer(tmp_path / "missing.yaml")


def test_an_empty_file_and_a_file_of_comments_set_nothing(tmp_path):
    assert settings.read_layer(write(tmp_path / "a.yaml", "")).values == {}
    assert settings.read_layer(write(tmp_path / "b.yaml", "# nothing\n#server:\n")).values == {}


def test_a_section_with_every_key_commented_out_sets_nothing(tmp_path):
    assert settings.read_layer(write(tmp_path / "a.yaml", "server:\n#  port: 1\n")).values == {}


def test_values_are_read_with_their_types_and_lines(tmp_path):
    layer = settings.read_layer(write(tmp_path / "a.yaml", "server:\n  host: ::1\n  port: 11500\n"))
    assert layer.values == {"server.host": ("::1", 2), "server.port": (11500, 3)}


def test_the_shipped_conffile_sets_nothing():
    layer = settings.read_layer(REPO / "etc/hailo/hailo-ollama.yaml")
    assert layer.values == {}


def test_later_layers_win_and_sources_name_the_file(paths):
    write(paths.debconf_layer, "server:\n  port: 11500\n  host: 127.0.0.1\n")
    write(paths.layer_dir / "50-site.yaml", "warmup:\n  model: qwen2:1.5b\n")
    write(paths.conffile, "server:\n  port: 11600\n")
    effective = settings.load(paths)
    assert effective["server.port"] == 11600
    assert effective.sources["server.port"] == str(paths.conffile)
    assert effective["server.host"] == "127.0.0.1"
    assert effective.sources["server.host"] == str(paths.debconf_layer)
    assert effective["warmup.model"] == "qwen2:1.5b"
    assert effective.sources["library.port"] == "default"


def test_without_any_file_the_defaults_apply(paths):
    effective = settings.load(paths)
    assert effective["server.port"] == 11434
    assert set(effective.sources.values()) == {"default"}


def test_files_in_the_layer_directory_that_are_not_yaml_are_ignored(paths):
    write(paths.layer_dir / "00-debconf.yaml.ucf-old", "garbage: [\n")
    write(paths.layer_dir / "README", "nothing")
    assert settings.load(paths)["server.port"] == 11434


def test_an_invalid_layer_makes_loading_fail_with_its_name(paths):
    write(paths.debconf_layer, "server:\n  port: 0\n")
    with pytest.raises(ConfigError, match="00-debconf.yaml:2: server.port"):
        settings.load(paths)


def test_the_conffile_location_can_be_changed_by_environment(tmp_path):
    from hailo_ollama_service.config.paths import make_paths
    other = write(tmp_path / "elsewhere.yaml", "server:\n  port: 12000\n")
    assert settings.load(make_paths(tmp_path, {"HAILO_OLLAMA_CONFIG": str(other)}))["server.port"] == 12000


def test_assignments_are_parsed_and_validated():
    assert settings.parse_assignment("server.port=11500") == ("server.port", 11500)
    assert settings.parse_assignment("warmup.model=") == ("warmup.model", "")
    with pytest.raises(ConfigError, match="server.port: must be from 1 to 65535"):
        settings.parse_assignment("server.port=0")
    with pytest.raises(ConfigError, match="did you mean 'server.port'"):
        settings.parse_assignment("server.prot=1")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        settings.parse_assignment("server.port")


def test_a_layer_written_by_layer_yaml_reads_back_to_the_same_values():
    values = {"server.host": "::", "server.port": 11500, "main_poll_time_ms": 100,
              "warmup.model": "qwen2:1.5b", "device.group_id": ""}
    text = settings.layer_yaml(values, "header line")
    layer = settings.parse_layer(text, "layer")
    assert {k: v for k, (v, _line) in layer.values.items()} == values
    assert text.startswith("# header line\n")


# ---------------------------------------------------------------- settings that depend on each other
def cross_error(paths) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings.load(paths)
    assert "\n" not in str(caught.value)
    return caught.value


def test_access_on_with_the_inner_port_equal_to_the_public_one_is_refused_naming_file_and_key(paths):
    write(paths.conffile, "server:\n  port: 12000\naccess:\n  enabled: true\n  server_port: 12000\n")
    err = cross_error(paths)
    assert err.key == "access.server_port"
    assert str(err).startswith(f"{paths.conffile}: access.server_port: must differ from server.port (12000)")


def test_the_conflict_names_the_layer_that_set_the_inner_port(paths):
    write(paths.debconf_layer, "access:\n  server_port: 11434\n")
    write(paths.conffile, "access:\n  enabled: true\n")
    assert str(cross_error(paths)).startswith(f"{paths.debconf_layer}: access.server_port: must differ")


def test_a_public_port_moved_onto_the_default_inner_port_is_refused_in_the_conffile(paths):
    write(paths.conffile, "server:\n  port: 11435\naccess:\n  enabled: true\n")
    assert str(cross_error(paths)).startswith(f"{paths.conffile}: access.server_port: must differ")


def test_the_same_ports_are_fine_while_access_is_off(paths):
    write(paths.conffile, "access:\n  server_port: 11434\n")
    assert settings.load(paths)["access.server_port"] == 11434


def test_tls_own_without_a_certificate_or_key_is_refused_naming_the_missing_one(paths):
    write(paths.conffile, "access:\n  enabled: true\n  tls: own\n")
    assert str(cross_error(paths)) == (f"{paths.conffile}: access.tls_certificate: "
                                       "must name a PEM file while access.tls is own")
    write(paths.conffile, 'access:\n  tls: own\n  tls_certificate: "/etc/ssl/certs/pi.pem"\n')
    assert cross_error(paths).key == "access.tls_key"
    write(paths.conffile, 'access:\n  tls: own\n  tls_certificate: /etc/ssl/certs/pi.pem\n'
                          '  tls_key: /etc/ssl/private/pi.key\n')
    assert settings.load(paths)["access.tls_key"] == "/etc/ssl/private/pi.key"


def test_without_any_file_access_stays_off(paths):
    effective = settings.load(paths)
    assert effective["access.enabled"] is False and effective["access.tls"] == "off"
    assert effective["models.allowed"] == ""
