"""The settings schema: the single source of truth for every setting.

Validation (settings.py), the shipped conffile's comments, the debconf
templates and their defaults, and the documentation are all produced from
``SETTINGS`` below; tests check the generated files against it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Union, cast

Value = Union[bool, int, str]

# Each pattern must match the whole value: always used with fullmatch, as
# "$" would also match before a final newline ("host\n" is not a host).
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_SIZE = re.compile(r"(?:[1-9][0-9]*[KMGT]?|(?:100|[1-9]?[0-9])(?:\.[0-9]+)?%|infinity)")
_PERCENT = re.compile(r"([1-9][0-9]{0,4})%")
_GROUP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(?::[A-Za-z0-9][A-Za-z0-9._-]{0,63})?")
# An IPv6 zone (fe80::1%eth0): ipaddress accepts any text after "%", a
# newline or a space included; only an interface name or index passes here.
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_PATH = re.compile(r"/[A-Za-z0-9_.,+@=/-]{1,1023}")
TLS_MODES = ("off", "snakeoil", "own")


class SettingError(ValueError):
    """A value that a setting does not accept; the message says why."""


def _check_int(value: object, low: int, high: int) -> int:
    # bool is an int in Python; YAML's true/yes must not pass as a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(f"must be a whole number from {low} to {high}, not {_describe(value)}")
    if not low <= value <= high:
        raise SettingError(f"must be from {low} to {high}, not {value}")
    return value


def _check_str(value: object) -> str:
    if not isinstance(value, str):
        raise SettingError(f"must be a string, not {_describe(value)}")
    return value


def _describe(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def check_port(value: object) -> int:
    """Return ``value`` if it is a TCP port (1..65535); raise SettingError."""
    return _check_int(value, 1, 65535)


def check_poll_ms(value: object) -> int:
    """Return ``value`` if it is a poll period in ms (1..65535, 16-bit upstream)."""
    return _check_int(value, 1, 65535)


def check_host(value: object) -> str:
    """Return ``value`` if it is an IPv4/IPv6 address or an RFC 1123 host name."""
    text = _check_str(value)
    try:
        ipaddress.ip_address(text)
        _address, _percent, zone = text.partition("%")
        if not _percent or _ZONE.fullmatch(zone):
            return text
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    if (0 < len(name) <= 253 and all(_HOSTNAME_LABEL.fullmatch(label) for label in name.split("."))
            and not name.replace(".", "").isdigit()):
        return text
    raise SettingError(f"must be an IPv4 or IPv6 address or a host name, not {text!r}")


def check_size(value: object) -> str:
    """Return ``value`` if it is a systemd MemoryMax= value (512M, 4G, 50%, infinity)."""
    if not isinstance(value, str):
        raise SettingError('must be a quoted size like "512M", "4G", "50%" or "infinity", '
                           f"not {_describe(value)}")
    text = value
    if not _SIZE.fullmatch(text):
        raise SettingError(f"must be a size like 512M, 4G, 50% or infinity, not {text!r}")
    return text


def check_percent(value: object) -> str:
    """Return ``value`` if it is a CPUQuota= percentage (1%..10000%) or infinity."""
    if not isinstance(value, str):
        raise SettingError(f"must be a quoted percentage like \"80%\", not {_describe(value)}")
    text = value
    if text == "infinity" or _PERCENT.fullmatch(text):
        return text
    raise SettingError(f"must be a percentage like 80% (100% is one CPU) or infinity, not {text!r}")


def check_group_id(value: object) -> str:
    """Return ``value`` if it is empty or a HailoRT VDevice group id (e.g. SHARED)."""
    text = "" if value is None else _check_str(value)
    if text and not _GROUP_ID.fullmatch(text):
        raise SettingError(f"must be empty or letters, digits, '.', '_' or '-', not {text!r}")
    return text


def check_bool(value: object) -> bool:
    """Return ``value`` if it is a YAML boolean (true or false)."""
    if not isinstance(value, bool):
        raise SettingError(f"must be true or false, not {_describe(value)}")
    return value


def _check_list(value: object, what: str, example: str, part_ok: Callable[[str], bool]) -> str:
    """Return ``value`` if it is empty or ``what`` separated by commas, each
    passing ``part_ok``; raise SettingError naming the bad entry."""
    text = "" if value is None else _check_str(value)
    for part in (p.strip() for p in text.split(",")):
        if not part and text.strip():
            raise SettingError(f"must be {what} separated by commas; found an empty entry in {text!r}")
        if part and not part_ok(part):
            raise SettingError(f"must be {what} like {example}, not {part!r}")
    return text


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def check_networks(value: object) -> str:
    """Return ``value`` if it is empty or a comma-separated list of networks (CIDR or address)."""
    return _check_list(value, "networks", "192.168.1.0/24 or fd00::/8", _is_network)


def check_tls(value: object) -> str:
    """Return ``value`` if it is a TLS mode: off, snakeoil or own."""
    if value is False:  # YAML 1.1 reads a bare "tls: off" as the boolean false
        raise SettingError('must be "off", "snakeoil" or "own" in quotes (YAML reads a bare off as false), '
                           f"not {_describe(value)}")
    text = _check_str(value)
    if text not in TLS_MODES:
        raise SettingError(f"must be one of {', '.join(TLS_MODES)}, not {text!r}")
    return text


def check_pem_path(value: object) -> str:
    """Return ``value`` if it is empty or an absolute path of a PEM file."""
    text = "" if value is None else _check_str(value)
    if text and (not text.startswith("/") or not _PATH.fullmatch(text) or "/../" in text + "/"):
        raise SettingError(f"must be empty or an absolute path without spaces or '..', not {text!r}")
    return text


def check_models(value: object) -> str:
    """Return ``value`` if it is empty or a comma-separated list of model names (name or name:tag)."""
    return _check_list(value, "model names", "qwen2:1.5b or llama3.2", lambda part: bool(_MODEL.fullmatch(part)))


def comma_list(text: str) -> list[str]:
    """The entries of a comma-separated setting (``check_models``, ``check_networks``), stripped, in order."""
    return [part.strip() for part in text.split(",") if part.strip()]


def check_model(value: object) -> str:
    """Return ``value`` if it is empty or a model name ``name[:tag]``."""
    text = "" if value is None else _check_str(value)
    if text and not _MODEL.fullmatch(text):
        raise SettingError(f"must be empty or a model name like qwen2:1.5b, not {text!r}")
    return text


@dataclass(frozen=True)
class Setting:
    """One setting: dotted key, default, validator and the words about it."""

    key: str
    default: Value
    check: Callable[[object], Value]
    help: str
    question: str
    priority: str
    prompt: str

    @property
    def is_bool(self) -> bool:
        """True when the value is a YAML boolean (a debconf boolean question)."""
        return isinstance(self.default, bool)

    @property
    def is_int(self) -> bool:
        """True when the value is a YAML integer (written unquoted)."""
        return isinstance(self.default, int) and not self.is_bool

    def parse_text(self, text: str) -> Value:
        """Turn a debconf/command-line string into the setting's type.

        Takes the text; returns the validated value; raises SettingError.
        """
        if self.is_bool:
            word = text.strip().lower()
            if word not in ("true", "false"):
                raise SettingError(f"must be true or false, not {text!r}")
            return word == "true"
        if self.is_int:
            stripped = text.strip()
            if not re.fullmatch(r"[0-9]{1,6}", stripped):
                raise SettingError(f"must be a whole number, not {text!r}")
            return self.check(int(stripped))
        return self.check(text.strip())


SETTINGS: tuple[Setting, ...] = (
    Setting("server.host", "0.0.0.0", check_host,
            "Address the API listens on (0.0.0.0 = every IPv4 address; 127.0.0.1 = this Pi only).",
            "host", "medium", "Address the Ollama-compatible API listens on:"),
    Setting("server.port", 11434, check_port,
            "TCP port of the Ollama-compatible API (11434 is what Ollama clients expect).",
            "port", "medium", "TCP port of the Ollama-compatible API:"),
    Setting("library.host", "dev-public.hailo.ai", check_host,
            "Host of Hailo's model library that pulls download from.",
            "library-host", "low", "Host of the Hailo model library:"),
    Setting("library.port", 443, check_port,
            "HTTPS port of the model library (upstream 5.1 only; 5.3 always uses 443).",
            "library-port", "low", "Port of the Hailo model library:"),
    Setting("main_poll_time_ms", 200, check_poll_ms,
            "How often (ms) the server checks for a stop request; 1..65535.",
            "", "", ""),
    Setting("resource_limits.memory_max", "4G", check_size,
            "systemd MemoryMax= of the server: 512M, 4G, 50% of RAM, or infinity.",
            "memory-max", "low", "Memory limit of the server (systemd MemoryMax=):"),
    Setting("resource_limits.cpu_quota", "80%", check_percent,
            "systemd CPUQuota= of the server: 80% of one core, 200% = two cores, or infinity.",
            "cpu-quota", "low", "CPU quota of the server (systemd CPUQuota=):"),
    Setting("device.group_id", "", check_group_id,
            "HailoRT VDevice group id to share the device with other programs (5.3); empty = none.",
            "group-id", "low", "HailoRT device group id to share the Hailo device (empty for none):"),
    Setting("warmup.model", "", check_model,
            "Model pulled (and loaded once) after install and boot, e.g. qwen2:1.5b; empty = none.",
            "warmup-model", "medium", "Model to download and load after installation (empty for none):"),
    Setting("warmup.keep_loaded", False, check_bool,
            "Keep warmup.model loaded for good (a timer renews keep_alive -1); it then holds the Hailo device.",
            "keep-loaded", "low", "Keep the warm-up model loaded at all times?"),
    Setting("models.allowed", "", check_models,
            "Kiosk allowlist: the only models offered (listed, pulled, loaded), comma-separated; empty = all.",
            "models-allowed", "low", "Models this Pi offers, separated by commas (empty for all):"),
    Setting("access.enabled", False, check_bool,
            "Require API keys: HAProxy (apt install haproxy) answers on server.host:server.port instead of the server.",
            "access", "low", "Require API keys (HAProxy in front of the server)?"),
    Setting("access.networks", "", check_networks,
            "With access on: networks allowed to connect, comma-separated (192.168.1.0/24, fd00::/8); empty = any.",
            "access-networks", "low", "Networks allowed to connect, separated by commas (empty for any):"),
    Setting("access.tls", "off", check_tls,
            "With access on: TLS off, snakeoil (ssl-cert's self-signed certificate) or own (the two files below).",
            "access-tls", "low", "TLS of the API (off, snakeoil or own):"),
    Setting("access.tls_certificate", "", check_pem_path,
            "With access.tls own: the certificate chain (PEM), e.g. /etc/ssl/certs/pi.pem.",
            "access-tls-certificate", "low", "Path of your TLS certificate (PEM), for TLS own:"),
    Setting("access.tls_key", "", check_pem_path,
            "With access.tls own: its private key (PEM), e.g. /etc/ssl/private/pi.key.",
            "access-tls-key", "low", "Path of your TLS private key (PEM), for TLS own:"),
    Setting("access.server_port", 11435, check_port,
            "With access on: the loopback port the server moves to behind the front (127.0.0.1 only).",
            "", "", ""),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
BY_QUESTION: dict[str, Setting] = {s.question: s for s in SETTINGS if s.question}
DEFAULTS: dict[str, Value] = {s.key: s.default for s in SETTINGS}


def server_listen(values: dict[str, Value]) -> tuple[str, int]:
    """Where Hailo's server itself listens: ``server.host:server.port``, or
    ``127.0.0.1:access.server_port`` behind the access front when access is on."""
    # No conversion: a value that is not what the schema says is refused where it is written.
    if values.get("access.enabled"):
        return "127.0.0.1", cast(int, values["access.server_port"])
    return cast(str, values["server.host"]), cast(int, values["server.port"])


def cross_check(values: dict[str, Value]) -> tuple[str, str] | None:
    """Check the settings that depend on each other.

    Takes the effective values; returns (key, one-line reason) for the
    first conflict, or None.
    """
    if values["access.enabled"] and values["access.server_port"] == values["server.port"]:
        return "access.server_port", (f"must differ from server.port ({values['server.port']}) while access "
                                      "is on: the front listens there and the server behind it")
    if values["access.tls"] == "own":
        for key in ("access.tls_certificate", "access.tls_key"):
            if not values[key]:
                return key, "must name a PEM file while access.tls is own"
    return None


def sections() -> dict[str, list[Setting]]:
    """Group the settings by their first key part, in schema order.

    Returns a mapping from the section ("server", ...) to its settings; a key
    without a dot is its own section.
    """
    out: dict[str, list[Setting]] = {}
    for setting in SETTINGS:
        out.setdefault(setting.key.split(".")[0], []).append(setting)
    return out


def yaml_scalar(setting: Setting, value: Value) -> str:
    """Return ``value`` written as a YAML scalar that reads back as itself."""
    if setting.is_bool:
        return "true" if value else "false"
    if setting.is_int:
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def validated(values: dict[str, object]) -> dict[str, Value] | None:
    """Defaults overlaid with ``values``, each checked by the schema; None if one fails."""
    out = dict(DEFAULTS)
    try:
        for key, value in values.items():
            if key in BY_KEY:
                out[key] = BY_KEY[key].check(value)
    except SettingError:
        return None
    return out
