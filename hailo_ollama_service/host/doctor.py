"""``hailo-ollama-service doctor``: every check that matters, each with a fix.

Each check returns a Check (status ok / warn / fail / skip, what it found,
the one fix to try). Every probe is bounded in time, so a dead API or a
hung tool cannot stall the report. Probes read below ``Host.root`` and run
commands through ``Host.run`` so tests can fake the machine. The checks of
models (listed, pulled, ``warmup.model`` offered) are in host.modelcheck.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import re
import stat
from typing import Any

from hailo_ollama_service.client import api, library
from hailo_ollama_service.config import load as settings
from hailo_ollama_service.config import outputs
from hailo_ollama_service.config.record import served_values
from hailo_ollama_service.config.schema import server_listen
from hailo_ollama_service.constants import ACCESS_UNIT, SERVER, SERVICE_USER, UNIT
from hailo_ollama_service.host import machine, manifests, stack
from hailo_ollama_service.host.machine import Host
from hailo_ollama_service.host.modelcheck import check_models, check_warmup
from hailo_ollama_service.host.report import Check, StackCheck, failed, guarded
from hailo_ollama_service.untrusted import shown

GIB = 1024 ** 3
DEVICE_GROUP = "hailo"


def check_binary(host: Host) -> Check:
    """Is upstream's server installed, and which package version?"""
    version = host.upstream_version()
    problem = machine.binary_problem(host.paths.root)
    if problem:
        return Check("binary", "fail", *problem)
    found = f"{SERVER}, hailo-gen-ai-model-zoo {version or 'version unknown'}"
    return Check("binary", "ok", found)


def check_generation(host: Host, values: dict[str, Any] | None) -> Check:
    """Does our rendering match the upstream generation installed (5.1 JSON / 5.3 env)?"""
    version = host.upstream_version()
    if not version:
        return Check("generation", "skip", "hailo-gen-ai-model-zoo is not installed; generation unknown")
    modern = machine.generation(version) == "5.3"
    kind, path, maker = (("5.3 (environment)", host.paths.env_file, outputs.environment) if modern else
                         ("5.1 (config file)", host.paths.upstream_json, outputs.upstream_json))
    if values is None:
        return Check("generation", "warn", f"upstream {version} reads {kind}; settings invalid, not compared",
                     "fix the settings (see the settings check)")
    try:
        current = path.read_bytes()
    except OSError:
        return Check("generation", "fail", f"upstream {version} reads {kind}, but {path} is missing",
                     "sudo hailo-ollama-service render")
    if current != maker(values):
        return Check("generation", "fail", f"{path} does not match the settings",
                     "sudo hailo-ollama-service render --try-restart")
    return Check("generation", "ok", f"upstream {version} reads {kind}; {path} matches the settings")


def check_device(host: Host) -> Check:
    """Is a Hailo device node present, and can the service user open it?"""
    problem = machine.device_problem(host.paths.root)
    if problem:
        return Check("device", "fail", *problem)
    node = machine.device_nodes(host.paths.root)[0]
    info = os.stat(node)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    found = f"{node} {owner}:{group} {stat.filemode(info.st_mode)}"
    usable = machine.can_open(info, SERVICE_USER)
    if usable is None:
        return Check("device", "warn", f"{found}; user {SERVICE_USER} does not exist",
                     "sudo apt install --reinstall hailo-ollama-service")
    if not usable:
        return Check("device", "fail", f"{found}; {SERVICE_USER} cannot open it",
                     "sudo udevadm trigger && sudo udevadm settle (the package's udev rule gives group "
                     f"'{DEVICE_GROUP}' access), then sudo systemctl restart {UNIT}")
    return Check("device", "ok", f"{found}; {SERVICE_USER} can open it")


def check_firmware(host: Host) -> Check:
    """What does ``hailortcli fw-control identify`` say?"""
    code, out = host.identify()
    if code in (126, 127):
        return Check("firmware", "skip", f"hailortcli not available ({out}); device not identified")
    arch = re.search(r"Device Architecture:\s*(\S+)", out)
    firmware = re.search(r"Firmware Version:\s*(.+)", out)
    if code != 0 or not arch:
        last = shown(out.splitlines()[-1]) if out.strip() else f"exit status {code}"
        return Check("firmware", "fail", f"hailortcli fw-control identify failed: {last}",
                     "check the device is not held by another program, then reboot; "
                     "versions of driver, runtime and hailo-gen-ai-model-zoo must match")
    found = f"{shown(arch.group(1))}, firmware {shown(firmware.group(1).strip()) if firmware else 'unknown'}"
    if "HAILO10H" not in arch.group(1):
        return Check("firmware", "warn", found + " (hailo-ollama needs a Hailo-10H)", "use a Hailo-10H module")
    return Check("firmware", "ok", found)


def check_stack(host: Host) -> StackCheck:
    """Do runtime, driver (installed and loaded), firmware and hailo-gen-ai-model-zoo
    agree on major.minor.patch? (stack.py: what is read, and why that strict)"""
    found = stack.read(host.paths.root, host.identify())
    status, what, fix = stack.judge(found)
    return StackCheck("stack", status, what, fix, versions=found.as_json())


def check_settings(host: Host) -> tuple[Check, dict[str, Any] | None]:
    """Are the settings valid and the rendered files in sync with them?"""
    try:
        values = settings.load(host.paths).values
    except settings.ConfigError as err:
        return Check("settings", "fail", str(err), "fix the file named, then: sudo hailo-ollama-service check"), None
    stale = [str(p) for p, maker in ((host.paths.upstream_json, outputs.upstream_json),
                                     (host.paths.dropin, outputs.dropin))
             if not p.exists() or p.read_bytes() != maker(values)]
    if stale:
        return Check("settings", "warn", f"valid, but not rendered yet: {', '.join(stale)}",
                     "sudo hailo-ollama-service render --try-restart"), values
    return Check("settings", "ok", "valid; rendered files in sync"), values


def check_diversion(host: Host) -> Check:
    """Is upstream's JSON diverted to us?"""
    target = "/etc/xdg/hailo-ollama/hailo-ollama.json"
    try:
        lines = host.file("/var/lib/dpkg/diversions").read_text().splitlines()
    except OSError:
        lines = []
    for i in range(0, len(lines) - 2, 3):
        if lines[i] == target:
            if lines[i + 2] == "hailo-ollama-service":
                return Check("diversion", "ok", f"{target} diverted to {lines[i + 1]}")
            return Check("diversion", "fail", f"{target} diverted by {lines[i + 2]}",
                         "sudo apt install --reinstall hailo-ollama-service")
    return Check("diversion", "fail", f"{target} is not diverted", "sudo apt install --reinstall hailo-ollama-service")


def check_port(host: Host, values: dict[str, Any] | None) -> Check:
    """Does only our server listen on its port (IPv4 and IPv6), and if not, who
    else does? (machine.port_verdict: decided by socket owner and cgroup)"""
    if values is None:
        return Check("port", "skip", "settings invalid; port unknown")
    return Check("port", *machine.port_verdict(int(server_listen(values)[1]), host.paths.root, host.is_root))


def check_unit(host: Host) -> Check:
    """The unit's state, restarts so far and last exit status."""
    props, why = machine.unit_properties(host)
    if props is None:
        return Check("unit", "skip", f"systemctl unavailable: {why}")
    if props.get("LoadState") == "not-found":
        return Check("unit", "fail", f"{UNIT} is not installed", "sudo apt install hailo-ollama-service")
    found = (f"{props.get('ActiveState')}/{props.get('SubState')}, {props.get('UnitFileState')}, "
             f"{props.get('NRestarts', '?')} restarts, last exit status {props.get('ExecMainStatus', '?')}")
    if props.get("ActiveState") != "active":
        return Check("unit", "fail", found, f"sudo systemctl enable --now {UNIT}; "
                     f"then journalctl -u {UNIT} -n 100 --no-pager")
    if props.get("UnitFileState") != "enabled":
        return Check("unit", "warn", found, f"sudo systemctl enable {UNIT}")
    if int(props.get("NRestarts") or 0) > 0:
        return Check("unit", "warn", found, f"see why it restarted: journalctl -u {UNIT} -n 100 --no-pager")
    return Check("unit", "ok", found)


def check_api(host: Host, values: dict[str, Any] | None) -> tuple[Check, list[str], list[str]]:
    """Does the API answer; which models does it list and which are pulled?"""
    if values is None:
        return Check("api", "skip", "settings invalid; address unknown"), [], []
    address, port = api.address(values)
    found = api.version(address, port, timeout=host.api_timeout)
    if found is None:
        return Check("api", "fail", f"{api.base_url(values)}/api/version does not answer",
                     f"journalctl -u {UNIT} -n 100 --no-pager"), [], []
    listed, pulled = [], []
    try:
        status, body = api.get_json(address, port, "/hailo/v1/list", host.api_timeout)
        listed = [m for m in (body or {}).get("models", []) if isinstance(m, str)] if status == 200 else []
        status, body = api.get_json(address, port, "/api/tags", host.api_timeout)
        pulled = [m.get("name", "") for m in (body or {}).get("models", []) if isinstance(m, dict)]
    except Exception:  # the lists are best effort: a hostile or odd answer leaves them empty
        pass
    return Check("api", "ok", f"{api.base_url(values)} answers, version {shown(found)}"), listed, pulled


def _loopback(host: str) -> bool:
    """True for a loopback address or the name localhost: only this machine can connect."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


def check_access(host: Host, values: dict[str, Any] | None) -> Check:
    """Who may use the API: open without keys on a network address (warn,
    with how to turn access on), or behind the access front (is it up?)."""
    if values is None:
        return Check("access", "skip", "settings invalid; access unknown")
    public = f"{values['server.host']}:{values['server.port']}"
    if not values["access.enabled"]:
        if _loopback(str(values["server.host"])):
            return Check("access", "ok", f"the API answers on {public} (this machine only), without keys")
        return Check("access", "warn", f"the API answers on {public} without keys: anyone who reaches this "
                     "port can chat, pull until the disk is full and delete models",
                     "require keys: sudo apt install haproxy; set access.enabled: true in "
                     "/etc/hailo/hailo-ollama.yaml; sudo hailo-ollama-service keys add NAME")
    props, why = machine.unit_properties(host, ACCESS_UNIT)
    if props is None:
        return Check("access", "skip", f"systemctl unavailable: {why}")
    found = f"{ACCESS_UNIT} is {props.get('ActiveState')}/{props.get('SubState')}, keys required on {public}"
    if props.get("ActiveState") != "active":
        return Check("access", "fail", found, f"journalctl -u {ACCESS_UNIT} -n 50 --no-pager; "
                     "then: sudo hailo-ollama-service render --try-restart")
    if host.is_root and not host.paths.keys_file.exists():
        return Check("access", "warn", found + "; no API key exists, so every request but /api/version is "
                     "refused", "sudo hailo-ollama-service keys add NAME [--admin]")
    return Check("access", "ok", found)


def check_library(host: Host, values: dict[str, Any] | None) -> Check:
    """Does the model library the server pulls from answer HTTPS? Its
    certificate is not checked, as upstream does not: a LAN library with a
    self-signed certificate is fine, since the server checks every blob
    against the manifest's sha256. Unreachable is a warning: models already
    pulled keep working."""
    if values is None:
        return Check("library", "skip", "settings invalid; library unknown")
    version = host.upstream_version()
    name, port = library.library_address(values, version)
    at = library.where(name, port)
    probe = host.library_probe or (lambda h, p: library.library_reachable(h, p, host.library_timeout))
    problem = probe(name, port)
    ignored = ""
    if port != int(values["library.port"]):
        ignored = f"; upstream {version} ignores library.port {values['library.port']}: the library must listen on 443"
    if problem:
        return Check("library", "warn", f"library {at}: {shown(problem)}{ignored}; pulls of new models fail, "
                     "models already pulled keep working",
                     "check the network, or library.host/library.port (hailo-ollama-service config; "
                     "sudo dpkg-reconfigure hailo-ollama-service)")
    return Check("library", "warn" if ignored else "ok",
                 f"library {at} answers HTTPS (certificate not checked, as upstream: every blob is checked "
                 f"against its manifest's sha256){ignored}",
                 "set library.port to 443, or serve the library on 443" if ignored else "")


def check_disk(host: Host) -> Check:
    """Is there room for another model where models are stored? (sizes from the
    manifests; one that cannot be read or parsed is a warning naming it)"""
    where, free = machine.free_space(host)
    largest, unread = manifests.largest(host.paths)
    need = largest or 2 * GIB
    found = f"{free / GIB:.1f} GiB free in {where}"
    bad = f"; {len(unread)} manifest(s) not read, e.g. {unread[0]}" if unread else ""
    delete = "curl -X DELETE .../api/delete -d '{\"model\": \"NAME\"}'"
    if free < need:
        return Check("disk", "warn", f"{found}; a model needs up to {need / GIB:.1f} GiB{bad}",
                     f"free space, or delete a model: {delete}")
    if unread:
        return Check("disk", "warn", found + bad, f"delete that model ({delete}) and pull it again")
    return Check("disk", "ok", found)


def _bytes(size: str, total: int) -> int | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT%]?)", size)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        return int(total * number / 100)
    return int(number * 1024 ** " KMGT".index(unit or " "))


def check_memory(host: Host, values: dict[str, Any] | None) -> Check:
    """Is MemoryMax= sensible for this machine's RAM?"""
    try:
        meminfo = host.file("/proc/meminfo").read_text()
        total = int(re.search(r"MemTotal:\s+(\d+) kB", meminfo).group(1)) * 1024  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return Check("memory", "skip", "cannot read /proc/meminfo")
    if values is None:
        return Check("memory", "skip", f"{total / GIB:.1f} GiB RAM; settings invalid")
    limit_text = str(values["resource_limits.memory_max"])
    limit = None if limit_text == "infinity" else _bytes(limit_text, total)
    found = f"MemoryMax={limit_text} of {total / GIB:.1f} GiB RAM"
    if limit is not None and limit < GIB:
        return Check("memory", "warn", found + "; models need more than 1 GiB",
                     "raise resource_limits.memory_max (sudo dpkg-reconfigure hailo-ollama-service)")
    if limit is not None and limit > total:
        return Check("memory", "warn", found + "; the limit is above the RAM", "lower resource_limits.memory_max")
    return Check("memory", "ok", found)


def check_thermal(host: Host) -> Check:
    """SoC temperature and throttling flags, where the Pi exposes them."""
    temp = machine.soc_temperature(host)
    value = machine.throttled(host)
    flags = [name for bit, name in machine.THROTTLE_BITS.items() if value & (1 << bit)] if value is not None else []
    if temp is None and value is None:
        return Check("thermal", "skip", "no /sys/class/thermal zone or vcgencmd here (not a Raspberry Pi?)")
    found = ", ".join(filter(None, [f"SoC {temp:.1f} °C" if temp is not None else "",
                                    f"throttled={value:#x}" if value is not None else "vcgencmd not available"]))
    if flags or (temp is not None and temp >= 80):
        return Check("thermal", "warn", found + (f" ({', '.join(flags)})" if flags else ""),
                     "improve cooling (active cooler) and use the official 27 W power supply")
    return Check("thermal", "ok", found)


def diagnose(host: Host) -> list[Check]:
    """Run every check in a fixed order; return the list. A check that raises
    is one ``fail`` line naming the exception (report.guarded)."""
    settings_check, values = guarded("settings", check_settings, host, on_error=lambda f: (f, None))
    try:  # with invalid settings the server still serves the last good ones
        served: dict[str, Any] | None = served_values(host.paths)
    except Exception:  # settings.ConfigError; anything else is the settings line's to report
        served = None
    api_check, listed, pulled = guarded("api", check_api, host, served, on_error=lambda f: (f, [], []))
    up = api_check.status == "ok"
    result = [guarded("binary", check_binary, host), guarded("generation", check_generation, host, values),
              guarded("device", check_device, host), guarded("firmware", check_firmware, host),
              guarded("stack", check_stack, host), settings_check, guarded("diversion", check_diversion, host),
              guarded("port", check_port, host, served), guarded("unit", check_unit, host),
              guarded("access", check_access, host, served), api_check,
              guarded("models", check_models, host, listed, pulled, up),
              guarded("warmup", check_warmup, served, listed, pulled, up),
              guarded("library", check_library, host, served), guarded("disk", check_disk, host),
              guarded("memory", check_memory, host, values), guarded("thermal", check_thermal, host)]
    if not host.is_root:
        result.append(Check("privileges", "skip", "not root: other users' processes (port holder) and "
                            "root-only files may be invisible", "run: sudo hailo-ollama-service doctor"))
    return result


def verify(host: Host) -> list[Check]:
    """The post-install verification: unit active and enabled, API, socket, models."""
    unit = guarded("unit", check_unit, host)
    if unit.status == "warn" and "restarts" in unit.fix:
        unit = Check(unit.id, "ok", unit.found)  # restarted earlier but running now: fine for verify
    try:
        values: dict[str, Any] | None = settings.load(host.paths).values
    except settings.ConfigError as err:
        values = None
        unit = Check("settings", "fail", str(err), "fix the file named, then: sudo hailo-ollama-service check")
    except Exception as err:  # a bug: one line, like any check's
        values, unit = None, failed("settings", err)
    api_check, listed, pulled = guarded("api", check_api, host, values, on_error=lambda f: (f, [], []))
    models = guarded("models", check_models, host, listed, pulled, api_check.status == "ok")
    if models.status == "warn":  # nothing pulled yet is normal right after install
        models = Check(models.id, "ok", models.found)
    return [unit, api_check, guarded("port", check_port, host, values), models]
