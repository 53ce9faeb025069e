"""Tests of config/schema.py: the validators and the schema itself."""

from __future__ import annotations

import re

import pytest

from hailo_ollama_service.config import schema
from hailo_ollama_service.config.schema import SettingError


@pytest.mark.parametrize("value", ["0.0.0.0", "127.0.0.1", "::", "::1", "fe80::1", "localhost",
                                   "dev-public.hailo.ai", "pi5.local", "a-b.c"])
def test_hosts_that_are_addresses_or_names_are_accepted(value):
    assert schema.check_host(value) == value


@pytest.mark.parametrize("value", ["", "bad_host!", "-leading.dash", "a..b", "999.1.1.1", "x" * 64, "1.2.3"])
def test_hosts_that_are_neither_addresses_nor_names_are_refused(value):
    with pytest.raises(SettingError, match="IPv4 or IPv6 address or a host name"):
        schema.check_host(value)


def test_a_host_given_as_a_number_is_refused_as_not_a_string():
    with pytest.raises(SettingError, match="must be a string, not the number 5"):
        schema.check_host(5)


@pytest.mark.parametrize("value", [1, 80, 11434, 65535])
def test_ports_from_1_to_65535_are_accepted(value):
    assert schema.check_port(value) == value


@pytest.mark.parametrize("value,message", [(0, "from 1 to 65535, not 0"), (65536, "not 65536"),
                                           (-1, "not -1"), ("11434", "not the string '11434'"),
                                           (True, "not the boolean true"), (1.5, "not the number 1.5"),
                                           (None, "not an empty value")])
def test_ports_outside_the_range_or_of_the_wrong_type_are_refused(value, message):
    with pytest.raises(SettingError, match=message):
        schema.check_port(value)


def test_the_poll_time_is_a_16_bit_number_of_milliseconds():
    assert schema.check_poll_ms(65535) == 65535
    with pytest.raises(SettingError):
        schema.check_poll_ms(0)
    with pytest.raises(SettingError):
        schema.check_poll_ms(65536)


@pytest.mark.parametrize("value", ["512M", "4G", "1T", "1024", "50%", "12.5%", "infinity"])
def test_systemd_sizes_are_accepted_as_memory_limits(value):
    assert schema.check_size(value) == value


@pytest.mark.parametrize("value", ["4X", "4 G", "-1G", "0", "101%", "G", "unlimited", ""])
def test_things_that_are_not_systemd_sizes_are_refused(value):
    with pytest.raises(SettingError, match="size like 512M"):
        schema.check_size(value)


@pytest.mark.parametrize("value", ["80%", "1%", "200%", "infinity"])
def test_percentages_are_accepted_as_cpu_quota(value):
    assert schema.check_percent(value) == value


@pytest.mark.parametrize("value", ["80", "0%", "80.5%", "%", "lots"])
def test_things_that_are_not_percentages_are_refused_as_cpu_quota(value):
    with pytest.raises(SettingError, match="percentage"):
        schema.check_percent(value)


def test_an_unquoted_number_as_cpu_quota_is_refused_with_a_hint_to_quote_it():
    with pytest.raises(SettingError, match='quoted percentage like "80%", not the number 80'):
        schema.check_percent(80)


@pytest.mark.parametrize("value", ["", "qwen2:1.5b", "llama3.2:3b", "deepseek_r1_distill_qwen:1.5b", "qwen2"])
def test_model_names_and_empty_are_accepted_as_warmup_model(value):
    assert schema.check_model(value) == value


def test_an_empty_warmup_model_may_be_written_as_null():
    assert schema.check_model(None) == ""


@pytest.mark.parametrize("value", ["qwen2 1.5b", ":tag", "a:b:c", "x;rm -rf"])
def test_malformed_model_names_are_refused(value):
    with pytest.raises(SettingError, match="model name"):
        schema.check_model(value)


def test_group_ids_are_short_tokens_or_empty():
    assert schema.check_group_id("SHARED") == "SHARED"
    assert schema.check_group_id("") == ""
    with pytest.raises(SettingError):
        schema.check_group_id("two words")


def test_debconf_text_is_converted_to_the_settings_type():
    assert schema.BY_KEY["server.port"].parse_text(" 11500 ") == 11500
    assert schema.BY_KEY["server.host"].parse_text("127.0.0.1") == "127.0.0.1"
    with pytest.raises(SettingError, match="whole number"):
        schema.BY_KEY["server.port"].parse_text("11500x")


def test_the_defaults_are_the_values_of_the_design():
    assert schema.DEFAULTS == {
        "server.host": "0.0.0.0", "server.port": 11434, "library.host": "dev-public.hailo.ai",
        "library.port": 443, "main_poll_time_ms": 200, "resource_limits.memory_max": "4G",
        "resource_limits.cpu_quota": "80%", "device.group_id": "", "warmup.model": "",
        "warmup.keep_loaded": False, "models.allowed": "", "access.enabled": False, "access.networks": "",
        "access.tls": "off", "access.tls_certificate": "", "access.tls_key": "", "access.server_port": 11435}


@pytest.mark.parametrize("text, value", [("true", True), ("false", False), (" TRUE ", True)])
def test_a_boolean_setting_reads_debconfs_true_and_false(text, value):
    assert schema.BY_KEY["warmup.keep_loaded"].parse_text(text) is value


@pytest.mark.parametrize("raw", [1, 0, "yes", "true", None])
def test_a_boolean_setting_takes_only_a_yaml_boolean(raw):
    with pytest.raises(SettingError, match="must be true or false"):
        schema.BY_KEY["warmup.keep_loaded"].check(raw)


def test_a_boolean_is_written_as_yaml_true_or_false_and_is_not_an_integer_setting():
    setting = schema.BY_KEY["warmup.keep_loaded"]
    assert schema.yaml_scalar(setting, True) == "true" and schema.yaml_scalar(setting, False) == "false"
    assert setting.is_bool and not setting.is_int


def test_every_default_passes_its_own_validator():
    for setting in schema.SETTINGS:
        assert setting.check(setting.default) == setting.default


def test_debconf_question_names_are_unique_and_every_setting_but_the_poll_time_and_the_inner_port_has_one():
    questions = [s.question for s in schema.SETTINGS if s.question]
    assert len(questions) == len(set(questions))
    assert {s.key for s in schema.SETTINGS if not s.question} == {"main_poll_time_ms", "access.server_port"}


# A valid value of every setting whose check is a pattern.
PATTERN_CHECKED = [("server.host", "host"), ("server.host", "127.0.0.1"), ("library.host", "dev-public.hailo.ai"),
                   ("resource_limits.memory_max", "4G"), ("resource_limits.cpu_quota", "80%"),
                   ("device.group_id", "SHARED"), ("warmup.model", "qwen2:1.5b"), ("access.tls", "own"),
                   ("access.tls_certificate", "/etc/ssl/certs/pi.pem"), ("access.tls_key", "/etc/ssl/private/pi.key")]


@pytest.mark.parametrize("key,value", PATTERN_CHECKED)
def test_a_trailing_newline_is_refused_by_every_pattern_checked_setting(key, value):
    setting = schema.BY_KEY[key]
    assert setting.check(value) == value
    for bad in (value + "\n", value + "\n\n", value + "\r", "\n" + value):
        with pytest.raises(SettingError):
            setting.check(bad)


def test_an_ipv6_zone_must_be_an_interface_name_not_any_text():
    assert schema.check_host("fe80::1%eth0") == "fe80::1%eth0"
    for bad in ("fe80::1%eth0\n", "fe80::1%a b", "fe80::1%x\nEnvironment=LD_PRELOAD=/tmp/x", "fe80::1%\x1b[2J"):
        with pytest.raises(SettingError, match="IPv4 or IPv6 address or a host name"):
            schema.check_host(bad)


# ---------------------------------------------------------------- access control and the kiosk allowlist
@pytest.mark.parametrize("value", ["", "192.168.1.0/24", "10.0.0.5", "fd00::/8", "192.168.1.0/24, 10.0.0.5, ::1",
                                   "192.168.1.7/24"])
def test_networks_of_addresses_and_cidrs_separated_by_commas_are_accepted(value):
    assert schema.check_networks(value) == value


def test_empty_networks_may_be_written_as_null():
    assert schema.check_networks(None) == ""


@pytest.mark.parametrize("value, message", [
    ("192.168.1.0/33", "networks like 192.168.1.0/24 or fd00::/8, not '192.168.1.0/33'"),
    ("10.0.0.5, eth0", "not 'eth0'"), ("10.0.0.0/8 192.168.0.0/16", "not '10.0.0.0/8 192.168.0.0/16'"),
    ("10.0.0.5,,10.0.0.6", "found an empty entry in '10.0.0.5,,10.0.0.6'"), ("10.0.0.5,", "empty entry"),
    (" , ", "empty entry"), (24, "must be a string, not the number 24")])
def test_malformed_networks_are_refused_naming_the_bad_entry(value, message):
    with pytest.raises(SettingError, match=re.escape(message)):
        schema.check_networks(value)


@pytest.mark.parametrize("value", ["off", "snakeoil", "own"])
def test_the_three_tls_modes_are_accepted(value):
    assert schema.check_tls(value) == value


@pytest.mark.parametrize("value, message", [("on", "one of off, snakeoil, own, not 'on'"), ("OWN", "not 'OWN'"),
                                            ("", "not ''"), ("own\n", "not 'own\\n'")])
def test_other_tls_modes_are_refused_naming_the_three(value, message):
    with pytest.raises(SettingError, match=re.escape(message)):
        schema.check_tls(value)


def test_an_unquoted_off_which_yaml_reads_as_false_is_refused_with_a_hint_to_quote_it():
    with pytest.raises(SettingError, match=re.escape('must be "off", "snakeoil" or "own" in quotes')):
        schema.check_tls(False)


@pytest.mark.parametrize("value", ["", "/etc/ssl/certs/pi.pem", "/etc/letsencrypt/live/pi.example/fullchain.pem",
                                   "/etc/ssl/private/pi_2024+key@x=1,a.key"])
def test_absolute_pem_paths_and_empty_are_accepted(value):
    assert schema.check_pem_path(value) == value


@pytest.mark.parametrize("value", ["etc/ssl/pi.pem", "./pi.pem", "/etc/ssl/../shadow", "/etc/ssl/..", "/",
                                   "/a b.pem", "/pi.pem\n", "/pi.pem\nX=1", "/caf\u00e9.pem", "~/pi.pem"])
def test_relative_or_odd_pem_paths_are_refused_naming_the_value(value):
    with pytest.raises(SettingError, match=re.escape(f"absolute path without spaces or '..', not {value!r}")):
        schema.check_pem_path(value)


@pytest.mark.parametrize("value", ["", "qwen2:1.5b", "qwen2:1.5b, llama3.2:3b", "deepseek_r1_distill_qwen:1.5b,qwen2"])
def test_model_lists_separated_by_commas_are_accepted(value):
    assert schema.check_models(value) == value


@pytest.mark.parametrize("value, message", [
    ("qwen2:1.5b, a:b:c", "model names like qwen2:1.5b or llama3.2, not 'a:b:c'"), ("qwen2 1.5b", "not 'qwen2 1.5b'"),
    ("qwen2:1.5b,,llama3.2", "found an empty entry"), (",qwen2", "found an empty entry"),
    ("x;rm -rf /", "not 'x;rm -rf /'"), (True, "must be a string, not the boolean true")])
def test_malformed_model_lists_are_refused_naming_the_bad_name(value, message):
    with pytest.raises(SettingError, match=re.escape(message)):
        schema.check_models(value)


def test_a_list_setting_is_read_as_its_stripped_names_in_order():
    assert schema.comma_list(" qwen2:1.5b ,llama3.2:3b , ") == ["qwen2:1.5b", "llama3.2:3b"]
    assert schema.comma_list("") == [] and schema.comma_list(" ") == []


ACCESS_ON = dict(schema.DEFAULTS, **{"access.enabled": True})


def test_the_defaults_keep_access_off_and_the_server_on_the_public_address():
    assert schema.DEFAULTS["access.enabled"] is False and schema.DEFAULTS["models.allowed"] == ""
    assert schema.server_listen(schema.DEFAULTS) == ("0.0.0.0", 11434)
    assert schema.cross_check(schema.DEFAULTS) is None


def test_with_access_on_the_server_listens_on_loopback_at_the_inner_port():
    assert schema.server_listen(ACCESS_ON) == ("127.0.0.1", 11435)
    moved = dict(ACCESS_ON, **{"server.host": "::", "access.server_port": 12000})
    assert schema.server_listen(moved) == ("127.0.0.1", 12000)


def test_the_inner_port_may_not_be_the_public_one_while_access_is_on():
    same = dict(ACCESS_ON, **{"access.server_port": 11434})
    key, message = schema.cross_check(same)
    assert key == "access.server_port" and "must differ from server.port (11434)" in message
    assert schema.cross_check(dict(same, **{"access.enabled": False})) is None
    assert schema.cross_check(dict(ACCESS_ON, **{"server.port": 11435}))[0] == "access.server_port"


def test_tls_own_needs_both_pem_files():
    own = dict(ACCESS_ON, **{"access.tls": "own"})
    assert schema.cross_check(own) == ("access.tls_certificate", "must name a PEM file while access.tls is own")
    with_cert = dict(own, **{"access.tls_certificate": "/etc/ssl/certs/pi.pem"})
    assert schema.cross_check(with_cert) == ("access.tls_key", "must name a PEM file while access.tls is own")
    assert schema.cross_check(dict(with_cert, **{"access.tls_key": "/etc/ssl/private/pi.key"})) is None
    assert schema.cross_check(dict(ACCESS_ON, **{"access.tls": "snakeoil"})) is None
