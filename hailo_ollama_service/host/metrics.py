"""``hailo-ollama-service metrics``: the figures that tell whether a Pi serves, for Prometheus.

Prints the Prometheus text exposition format (version 0.0.4). The values
come from doctor's probes, each bounded in time, so a hung API or tool
cannot stall a scrape. A timer writes the output for node_exporter's
textfile collector (root's ``root.publish`` checks and copies it); nothing
of ours stays resident.

Names follow Prometheus conventions: the ``hailo_ollama_`` prefix, base
units (bytes, seconds, degrees Celsius), ``_total`` for counters and
``_info`` with labels for versions. A figure that cannot be known (no API,
not a Pi) is left out rather than reported as a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hailo_ollama_service import __version__
from hailo_ollama_service.client import api
from hailo_ollama_service.config import load as settings
from hailo_ollama_service.config.record import served_values
from hailo_ollama_service.constants import ACCESS_UNIT
from hailo_ollama_service.host import doctor, machine
from hailo_ollama_service.host.machine import Host
from hailo_ollama_service.untrusted import shown

PS_TIMEOUT = 0.5
@dataclass
class Family:
    """One metric: name, type, help and its samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        """Add one sample; return self."""
        self.samples.append((labels, float(value)))
        return self


def _ascii(text: str) -> str:
    """Take escaped exposition text; return it with every character outside
    printable ASCII written as ``\\xNN``/``\\uNNNN`` text (an escaped
    backslash, so the value reads back as that text), which publish accepts."""
    if all(" " <= c <= "~" for c in text):
        return text
    return "".join(c if " " <= c <= "~" else "\\\\" + c.encode("unicode_escape").decode("ascii").lstrip("\\")
                   for c in text)


def _escape_help(value: str) -> str:
    """A HELP text: backslash and newline escaped, then made printable ASCII."""
    return _ascii(value.replace("\\", "\\\\").replace("\n", "\\n"))


def _escape(value: str) -> str:
    """A label value: backslash, double quote and newline escaped, then made
    printable ASCII (a hostile version or model name cannot make publish
    refuse the file)."""
    return _escape_help(value).replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def exposition(families: list[Family]) -> str:
    """The text exposition of ``families`` (families without samples are left out)."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            text = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
            lines.append(f"{family.name}{{{text}}} {_number(value)}" if text else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _loaded_models(address: str, port: int) -> list[str] | None:
    """Models in /api/ps, or None when it does not answer at once: /api/ps
    waits for the generation lock, and a scrape must never wait behind a
    generation. The answer is the server's, so hostile: anything odd in it
    (an exception of any kind while asking or reading it) is None too."""
    try:
        status, body = api.get_json(address, port, "/api/ps", PS_TIMEOUT)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("models", []), list):
            return None
        return [str(m.get("name", "")) for m in body.get("models", []) if isinstance(m, dict)]
    except Exception:  # OSError, ValueError, RecursionError, HTTPException...: not known, not a crash
        return None


def collect(host: Host) -> list[Family]:
    """Probe the machine (bounded); return every metric family."""
    try:
        valid: dict | None = settings.load(host.paths).values
    except settings.ConfigError:
        valid = None
    try:  # with invalid settings the server still serves the last good ones
        served: dict | None = served_values(host.paths)
    except settings.ConfigError:
        served = None
    api_check, listed, pulled = doctor.check_api(host, served)
    up = api_check.status == "ok"
    upstream = host.upstream_version()
    families = [
        Family("hailo_ollama_up", "gauge", "1 when GET /api/version answers on the served address.").add(up),
        Family("hailo_ollama_build_info", "gauge", "Versions: this package, Hailo's hailo-gen-ai-model-zoo, "
               "and the configuration generation it reads (5.1 JSON, 5.3 environment).").add(
            1, version=__version__, upstream_version=shown(upstream or ""),
            generation=machine.generation(upstream) or ""),
        Family("hailo_ollama_settings_valid", "gauge", "1 when the settings are valid; 0 when the last edit "
               "was refused and the last good configuration is served.").add(valid is not None),
    ]
    props, _why = machine.unit_properties(host)
    if props is not None and props.get("LoadState") == "loaded":
        families += [
            Family("hailo_ollama_unit_active", "gauge", "1 when hailo-ollama.service is active.").add(
                props.get("ActiveState") == "active"),
            Family("hailo_ollama_unit_restarts_total", "counter", "Automatic restarts of hailo-ollama.service "
                   "since it was last started by hand or at boot (NRestarts).").add(
                int(props.get("NRestarts") or 0)),
            Family("hailo_ollama_unit_last_exit_status", "gauge", "Exit status (or signal number) of the "
                   "server's last main process (ExecMainStatus).").add(int(props.get("ExecMainStatus") or 0)),
        ]
    if served is not None:
        front, _why = machine.unit_properties(host, ACCESS_UNIT) if served["access.enabled"] else (None, "")
        families += [
            Family("hailo_ollama_access_enabled", "gauge", "1 when access control is on (HAProxy in front, "
                   "API keys required).").add(bool(served["access.enabled"])),
            Family("hailo_ollama_access_front_up", "gauge", "1 when access is on and hailo-ollama-access.service "
                   "(the front) is active; 0 when it is down or access is off.").add(
                front is not None and front.get("ActiveState") == "active"),
        ]
    if up and served is not None:
        families += [
            Family("hailo_ollama_models_available", "gauge", "Models the server knows (/hailo/v1/list).").add(
                len(listed)),
            Family("hailo_ollama_models_downloaded", "gauge", "Models whose weights are downloaded "
                   "(/api/tags).").add(len(pulled)),
        ]
        loaded = _loaded_models(*api.address(served))
        families.append(Family("hailo_ollama_model_loaded_known", "gauge", "1 when the loaded model could be "
                               "read without waiting behind a running generation.").add(loaded is not None))
        families.append(_loaded_family(loaded))
    nodes = machine.device_nodes(host.paths.root)
    usable = machine.device_usable(nodes[0]) if nodes else False
    families += [
        Family("hailo_ollama_device_present", "gauge", "1 when a Hailo device node exists "
               "(/dev/hailo0 or /dev/h1x-0).").add(bool(nodes)),
        Family("hailo_ollama_device_usable", "gauge", "1 when the service user may open the device node.").add(
            bool(usable)),
    ]
    _where, free = machine.free_space(host)
    families.append(Family("hailo_ollama_models_free_bytes", "gauge", "Free bytes on the file system that "
                           "holds the models.").add(free))
    temp = machine.soc_temperature(host)
    if temp is not None:
        families.append(Family("hailo_ollama_soc_temperature_celsius", "gauge", "SoC temperature.").add(temp))
    bits = machine.throttled(host)
    if bits is not None:
        family = Family("hailo_ollama_throttled", "gauge", "1 while a firmware throttling condition holds "
                        "(now) or has held since boot (occurred), from get_throttled.")
        for bit, name in machine.THROTTLE_BITS.items():
            family.add(bool(bits & (1 << bit)), condition=name.replace(" ", "_"))
        families.append(family)
    return families


def _loaded_family(loaded: list[str] | None) -> Family:
    family = Family("hailo_ollama_model_loaded", "gauge", "1 for each model loaded on the device.")
    for name in (loaded or [])[:100]:
        family.add(1, model=shown(name))  # the server's: escaped, length-capped
    return family


__all__ = ["Family", "collect", "exposition"]
