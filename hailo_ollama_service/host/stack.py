"""Do the pieces of the Hailo stack agree on one version? (doctor's ``stack`` check)

The pieces: the runtime package (libhailort), the PCIe driver package, the
driver module actually loaded, the firmware the device runs, and the
``hailo-gen-ai-model-zoo`` package (upstream's server), whose ``Depends``
names the runtime it was built for. Everything is read below a root
directory (dpkg's status file, /sys/module) so tests can fake a machine;
the firmware comes from ``hailortcli fw-control identify``'s output, which
the caller runs (doctor's ``Host.identify``).

How strict: every piece must have the same major.minor.patch; Debian
revisions and suffixes (``-1``, ``+rpt1``, an epoch) are ignored. HailoRT
itself is that strict, so anything looser would call a broken stack fine:
- libhailort refuses a driver whose major, minor and revision differ from
  its own (``validate_driver_version``, HAILO_INVALID_DRIVER_VERSION(76);
  hailo-ai/hailort, libhailort/src/vdma/driver/hailort_driver.cpp);
- the Hailo-10H PCIe driver refuses device-side firmware whose driver
  version differs in any of the three ("Mismatch Driver version pcie driver
  X:Y:Z pci_ep driver ...", hailo-ai/hailort-drivers linux/pcie/src/soc.c);
- libhailort's file name carries the full version (CMake ``VERSION x.y.z``,
  no separate SOVERSION), so a hailo-ollama built against 5.1.1 needs
  ``libhailort.so.5.1.1`` even when its ``Depends`` says ``>= 5.1.1``.
  The zoo's Depends version is therefore read as "built for exactly this
  x.y.z", whatever the relation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hailo_ollama_service.untrusted import shown

# Package names, and where they come from:
# - Raspberry Pi OS, Hailo-10H (AI HAT+ 2): the metapackage hailo-h10-all
#   brings h10-hailort (runtime) and h10-hailort-pcie-driver (DKMS driver and
#   firmware); Raspberry Pi's AI HAT+ 2 documentation installs them with
#   "sudo apt install dkms hailo-h10-all".
# - Hailo's own Developer Zone .debs (4.x and 5.x alike): hailort and
#   hailort-pcie-driver; the 5.3.0 hailo-gen-ai-model-zoo .deb was reported
#   to depend on this generic "hailort" rather than on h10-hailort.
# - Raspberry Pi OS's hailo-all for the Hailo-8/8L (bookworm era): hailort,
#   with the driver in hailo-dkms (Raspberry Pi's AI Kit documentation pins
#   sets such as hailort=4.17.0 hailo-dkms=4.17.0-1).
RUNTIME_PACKAGES = ("h10-hailort", "hailort")
DRIVER_PACKAGES = ("h10-hailort-pcie-driver", "hailort-pcie-driver", "hailo-dkms")
DRIVERS_OF = {"h10-hailort": ("h10-hailort-pcie-driver",), "hailort": ("hailort-pcie-driver", "hailo-dkms")}
META_PACKAGES = ("hailo-h10-all", "hailo-all")
ZOO_PACKAGE = "hailo-gen-ai-model-zoo"
# Kernel modules, from hailo-ai/hailort-drivers (linux/pcie/Kbuild, and
# MODULE_VERSION(HAILO_DRV_VER) in linux/pcie/src/pcie.c, HAILO_DRV_VER being
# "major.minor.revision" of common/hailo_ioctl_common.h, so the kernel shows
# it in /sys/module/<name>/version): hailo1x_pci is built by every 5.x tag
# (5.1.0, 5.1.1, 5.2.0, 5.3.0; 5.1 names its node /dev/hailo0, 5.3
# /dev/h1x-0); hailo_pci is the 4.x Hailo-8 driver (branch hailo8).
MODULES = ("hailo1x_pci", "hailo_pci")
DPKG_STATUS = "var/lib/dpkg/status"
# dpkg states in which the package's files are on disk (not-installed,
# config-files and half-installed are not).
ON_DISK = {"installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"}

_RELEASE = re.compile(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_DEPENDENCY = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9+.\-]*)(?::[A-Za-z0-9\-]+)?\s*"
                         r"(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^\s)]+)\s*\))?")


def release(version: str | None) -> str | None:
    """Take a version as the system spells it (``1:5.1.1-1+rpt2``, ``5.1.1 (release,app)``);
    return its ``major.minor.patch`` (missing parts as 0), or None when it has none."""
    if not version:
        return None
    upstream = version.split(":", 1)[1] if re.match(r"\d+:", version) else version
    match = _RELEASE.match(upstream)
    if not match:
        return None
    return ".".join(part or "0" for part in match.groups())


@dataclass(frozen=True)
class Piece:
    """One piece of the stack: ``kind`` (runtime, driver package, loaded driver,
    firmware, zoo), its package or module ``name``, and ``version`` as read."""

    kind: str
    name: str
    version: str | None

    @property
    def release(self) -> str | None:
        """major.minor.patch of the version, or None."""
        return release(self.version)

    @property
    def label(self) -> str:
        """How the report names it, e.g. ``h10-hailort 5.1.1-1`` or ``firmware 5.1.1``
        (the version's first word: the firmware's build notes are left to --json)."""
        name = "firmware" if self.kind == "firmware" else self.name
        return f"{name} {self.version.split()[0] if self.version else '(version unknown)'}"


@dataclass(frozen=True)
class Need:
    """One alternative of a Depends clause: ``package (relation version)``."""

    package: str
    relation: str | None
    version: str | None

    @property
    def release(self) -> str | None:
        """major.minor.patch of the version asked for, or None."""
        return release(self.version)


@dataclass
class Stack:
    """Every piece found (None where absent), the Hailo packages installed
    (name -> version) and why the firmware was not read, if it was not."""

    runtime: Piece | None = None
    driver_package: Piece | None = None
    module: Piece | None = None
    firmware: Piece | None = None
    zoo: Piece | None = None
    zoo_needs: Need | None = None
    packages: dict[str, str] = field(default_factory=dict)
    firmware_note: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the ``stack`` object of ``doctor --json``: each piece as an
        object with its name, version and release (x.y.z), or null."""
        def piece(p: Piece | None, key: str = "package") -> dict[str, Any] | None:
            if p is None:
                return None
            doc: dict[str, Any] = {key: p.name} if key else {}
            return {**doc, "version": p.version, "release": p.release}

        zoo = piece(self.zoo)
        if zoo is not None:
            need = self.zoo_needs
            zoo["needs"] = None if need is None else {"package": need.package, "relation": need.relation,
                                                      "version": need.version, "release": need.release}
        return {"runtime": piece(self.runtime), "driver_package": piece(self.driver_package),
                "driver_loaded": piece(self.module, "module"), "firmware": piece(self.firmware, ""),
                "zoo": zoo, "packages": dict(self.packages)}


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """Take the text of dpkg's status file; return {package: {field (lower case): value}}
    for the packages whose files are on disk. Malformed lines and stanzas are skipped."""
    found: dict[str, dict[str, str]] = {}
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            key = name.strip().lower() if colon and name.strip() and " " not in name.strip() else None
            if key:
                fields[key] = value.strip()
        package = fields.get("package", "")
        state = fields.get("status", "").split()
        if package and len(state) == 3 and state[2] in ON_DISK and package not in found:
            found[package] = fields
    return found


def read_status(root: Path) -> dict[str, dict[str, str]]:
    """Take the root directory; return ``parse_status`` of its dpkg status file ({} if unreadable)."""
    try:
        return parse_status((root / DPKG_STATUS).read_bytes().decode("utf-8", "replace"))
    except OSError:
        return {}


def parse_depends(text: str) -> list[list[Need]]:
    """Take a Depends value; return its clauses, each a list of alternatives."""
    clauses = []
    for clause in text.split(","):
        alternatives = [Need(*m.groups()) for m in map(_DEPENDENCY.match, clause.split("|")) if m]
        if alternatives:
            clauses.append(alternatives)
    return clauses


def runtime_need(depends: str, installed: dict[str, dict[str, str]]) -> Need | None:
    """Take the zoo's Depends and the installed packages; return the runtime it
    asks for (the installed alternative if any, else the first), or None."""
    for clause in parse_depends(depends):
        runtimes = [need for need in clause if need.package in RUNTIME_PACKAGES]
        if runtimes:
            return next((need for need in runtimes if need.package in installed), runtimes[0])
    return None


def loaded_module(root: Path, prefer_hailo8: bool = False) -> Piece | None:
    """Take the root directory; return the loaded Hailo PCIe module and its
    ``/sys/module/<name>/version`` (None if unreadable), or None when none is loaded.
    With both loaded, hailo1x_pci wins unless ``prefer_hailo8`` (a 4.x runtime)."""
    for name in (MODULES[::-1] if prefer_hailo8 else MODULES):
        where = root / "sys/module" / name
        if where.is_dir():
            try:
                version: str | None = shown((where / "version").read_text(errors="replace").strip()) or None
            except OSError:
                version = None
            return Piece("loaded driver", name, version)
    return None


def firmware_version(identify: tuple[int, str]) -> tuple[str | None, str]:
    """Take ``hailortcli fw-control identify``'s (exit status, output); return
    (the firmware version, "") or (None, why it was not read). What the tool
    printed is escaped (untrusted.shown): the device reports the version."""
    code, out = identify
    if code in (126, 127):
        return None, "hailortcli not available"
    if code == 124:
        return None, "hailortcli timed out"
    match = re.search(r"Firmware Version:[ \t]*(\S[^\r\n]*)", out)
    if code != 0 or not match:
        last = shown(out.strip().splitlines()[-1], 120) if out.strip() else f"exit status {code}"
        return None, f"hailortcli fw-control identify failed: {last}"
    return shown(match.group(1).strip()), ""


def read(root: Path, identify: tuple[int, str]) -> Stack:
    """Take the root directory and ``hailortcli fw-control identify``'s (exit status,
    output); return the Stack found. Raises nothing: absent pieces are None."""
    installed = read_status(root)
    stack = Stack(packages={name: installed[name].get("version", "") for name in
                            (*RUNTIME_PACKAGES, *DRIVER_PACKAGES, *META_PACKAGES, ZOO_PACKAGE) if name in installed})
    if ZOO_PACKAGE in installed:
        stack.zoo = Piece("zoo", ZOO_PACKAGE, installed[ZOO_PACKAGE].get("version") or None)
        stack.zoo_needs = runtime_need(installed[ZOO_PACKAGE].get("depends", ""), installed)
    # the runtime hailo-ollama uses is the one its package depends on, if installed
    wanted = stack.zoo_needs.package if stack.zoo_needs and stack.zoo_needs.package in installed else None
    runtime = wanted or next((name for name in RUNTIME_PACKAGES if name in installed), None)
    if runtime:
        stack.runtime = Piece("runtime", runtime, installed[runtime].get("version") or None)
    order = DRIVERS_OF.get(runtime or "", ()) + DRIVER_PACKAGES
    driver = next((name for name in order if name in installed), None)
    if driver:
        stack.driver_package = Piece("driver package", driver, installed[driver].get("version") or None)
    runtime_release = stack.runtime.release if stack.runtime else None
    stack.module = loaded_module(root, prefer_hailo8=bool(runtime_release and int(runtime_release.split(".")[0]) < 5))
    version, stack.firmware_note = firmware_version(identify)
    if version:
        stack.firmware = Piece("firmware", "firmware", version)
    return stack


def _disagreement(a: Piece, b: Piece) -> tuple[str, bool]:
    """Take two neighbouring pieces that differ; return (the phrase naming both,
    whether a reboot, rather than a package change, is what aligns them)."""
    if a.kind == "driver package" and b.kind == "loaded driver":
        return f"{a.label} is installed but {b.label} is loaded: reboot needed", True
    if b.kind == "firmware" and a.kind == "runtime":  # no driver seen: the packages must change
        return f"runtime {a.label} but the device runs {b.label}", False
    if b.kind == "firmware":  # the driver loads the firmware when it probes the device, at boot
        return f"{a.label} {'is loaded' if a.kind == 'loaded driver' else 'is installed'} but the device runs " \
               f"{b.label}: reboot needed", True
    if b.kind == "loaded driver":
        return f"runtime {a.label} but {b.label} is loaded", False
    return f"runtime {a.label} but driver {b.label}", False


def judge(stack: Stack) -> tuple[str, str, str]:
    """Take a Stack; return (status, what was found, the fix) for doctor: ``fail``
    when two pieces differ on major.minor.patch, ``ok`` when at least two were
    compared and agree, ``skip`` when there is nothing to compare."""
    everything = [p for p in (stack.runtime, stack.driver_package, stack.module, stack.firmware, stack.zoo) if p]
    absent = (("no runtime package", stack.runtime), ("no driver package", stack.driver_package),
              ("no Hailo module loaded", stack.module))
    notes = [what for what, piece in absent if piece is None]
    if stack.firmware is None:
        notes.append(f"firmware not read: {stack.firmware_note}")
    if not everything:
        return ("skip", f"no Hailo stack: no {' or '.join(RUNTIME_PACKAGES)} package, no {' or '.join(MODULES)} "
                f"module loaded, firmware not read ({stack.firmware_note})", "")
    problems: list[str] = []
    align = False
    need, runtime, zoo = stack.zoo_needs, stack.runtime, stack.zoo
    compared = 0
    if zoo and need and need.release:
        compared += 1
        if runtime is None or runtime.name != need.package:
            problems.append(f"{zoo.label} needs {need.package} {need.release}, which is not installed"
                            + (f" ({runtime.label} is)" if runtime else ""))
            align = True
        elif runtime.release != need.release:
            problems.append(f"{zoo.label} is built for {need.package} {need.release} (libhailort.so.{need.release}) "
                            f"but {runtime.label} is installed")
            align = True
    chain = [p for p in (runtime, stack.driver_package, stack.module, stack.firmware) if p and p.release]
    compared += len(chain)
    for a, b in zip(chain, chain[1:]):
        if a.release != b.release:
            phrase, needs_reboot = _disagreement(a, b)
            problems.append(phrase)
            align = align or not needs_reboot
    labels = ", ".join(p.label for p in everything)
    if problems:
        return "fail", "; ".join(problems), _fix(stack, align)
    if compared < 2:
        return "skip", "; ".join([f"{labels}: nothing to compare", *notes]), ""
    agreed = (chain[0].release if chain else need.release if need else None)
    return "ok", "; ".join([f"all {agreed}: {labels}", *notes]), ""


def _fix(stack: Stack, align: bool) -> str:
    """Take a Stack whose pieces differ and whether packages must change (else
    only a reboot); return the one fix to try."""
    if not align:
        driver = stack.driver_package.name if stack.driver_package else "the driver package"
        return (f"sudo reboot: the driver and the firmware are loaded at boot, so the installed ones are not "
                f"running yet; if it persists after a reboot, sudo apt install --reinstall {driver} (its DKMS "
                "build needs the running kernel's headers)")
    target = (stack.zoo_needs.release if stack.zoo_needs and stack.zoo_needs.release
              else stack.runtime.release if stack.runtime else None)
    return (f"align the versions{f' on {target}' if target else ''}: sudo apt install hailo-h10-all (Raspberry Pi "
            f"OS's h10-hailort and h10-hailort-pcie-driver) or Hailo's{f' {target}' if target else ''} hailort and "
            f"hailort-pcie-driver .debs, and the {ZOO_PACKAGE} built for that version; then sudo reboot (the driver "
            "and the firmware load at boot)")
