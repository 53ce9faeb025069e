"""Tests of host/stack.py and doctor's ``stack`` check on faked machines: dpkg's
status file, /sys/module and a fake ``hailortcli`` below a scratch root."""

from __future__ import annotations

import json

import pytest

from hailo_ollama_service.host import doctor, report, stack
from hailo_ollama_service.host.machine import Host

from unit_helpers import write

IDENTIFY = ("Executing on device: 0001:01:00.0\nIdentifying board\nControl Protocol Version: 2\n"
            "Firmware Version: {} (release,app,extended context switch buffer)\nLogger Version: 0\n"
            "Device Architecture: HAILO10H\n")
NO_HAILORTCLI = (127, "hailortcli: not found")


def stanza(package: str, version: str, depends: str = "", status: str = "install ok installed") -> str:
    """One dpkg status stanza."""
    lines = [f"Package: {package}", f"Status: {status}", "Priority: optional", "Architecture: arm64",
             f"Version: {version}"]
    if depends:
        lines.append(f"Depends: {depends}")
    lines += ["Description: a package", " with a long description", " ."]
    return "\n".join(lines) + "\n"


def machine(root, packages=(), modules=None, status_text=None):
    """Write dpkg's status (from ``packages`` stanzas, or ``status_text``) and
    /sys/module/<name>/version files below ``root``."""
    text = status_text if status_text is not None else "\n".join(stanza(*p) for p in packages)
    write(root / "var/lib/dpkg/status", text)
    for name, version in (modules or {}).items():
        (root / "sys/module" / name).mkdir(parents=True)
        if version is not None:
            write(root / "sys/module" / name / "version", version + "\n")


def runner(identify):
    """A fake command runner that answers ``hailortcli fw-control identify`` only."""
    calls = []

    def run(argv):
        calls.append(argv)
        return identify if argv[:3] == ["hailortcli", "fw-control", "identify"] else (127, f"{argv[0]}: not found")
    run.calls = calls
    return run


def stack_check(paths, identify=NO_HAILORTCLI):
    return doctor.check_stack(Host(paths, run=runner(identify), is_root=True))


def healthy(root, version="5.1.1", zoo_depends="h10-hailort (= 5.1.1)"):
    machine(root, [("h10-hailort", version), ("h10-hailort-pcie-driver", version), ("hailo-h10-all", version),
                   ("hailo-gen-ai-model-zoo", version, zoo_depends)], {"hailo1x_pci": version})


def test_a_stack_on_one_version_is_ok_and_lists_every_piece(paths):
    healthy(paths.root)
    check = stack_check(paths, (0, IDENTIFY.format("5.1.1")))
    assert check.status == "ok", check
    assert check.found.startswith("all 5.1.1: ")
    for piece in ("h10-hailort 5.1.1", "h10-hailort-pcie-driver 5.1.1", "hailo1x_pci 5.1.1", "firmware 5.1.1",
                  "hailo-gen-ai-model-zoo 5.1.1"):
        assert piece in check.found


def test_a_runtime_older_than_the_zoo_needs_fails_naming_both(paths):
    machine(paths.root, [("h10-hailort", "5.1.1"), ("h10-hailort-pcie-driver", "5.1.1"),
                         ("hailo-gen-ai-model-zoo", "5.3.0", "h10-hailort (= 5.3.0), libc6 (>= 2.36)")],
            {"hailo1x_pci": "5.1.1"})
    check = stack_check(paths, (0, IDENTIFY.format("5.1.1")))
    assert check.status == "fail"
    assert "hailo-gen-ai-model-zoo 5.3.0 is built for h10-hailort 5.3.0" in check.found
    assert "h10-hailort 5.1.1 is installed" in check.found and "libhailort.so.5.3.0" in check.found
    assert "align the versions on 5.3.0" in check.fix and "sudo apt install hailo-h10-all" in check.fix
    assert "sudo reboot" in check.fix


def test_a_greater_or_equal_depends_still_means_the_runtime_the_zoo_was_built_for(paths):
    machine(paths.root, [("h10-hailort", "5.3.0"), ("hailo-gen-ai-model-zoo", "5.1.1", "h10-hailort (>= 5.1.1)")])
    check = stack_check(paths)
    assert check.status == "fail" and "built for h10-hailort 5.1.1" in check.found


def test_a_zoo_that_depends_on_hailos_generic_runtime_name_is_compared_with_that_package(paths):
    machine(paths.root, [("h10-hailort", "5.1.1"), ("hailort", "5.3.0"), ("hailort-pcie-driver", "5.3.0"),
                         ("hailo-gen-ai-model-zoo", "5.3.0", "hailort (= 5.3.0)")], {"hailo1x_pci": "5.3.0"})
    check = stack_check(paths, (0, IDENTIFY.format("5.3.0")))
    assert check.status == "ok", check
    assert check.versions["runtime"] == {"package": "hailort", "version": "5.3.0", "release": "5.3.0"}
    assert check.versions["driver_package"]["package"] == "hailort-pcie-driver"


def test_a_zoo_whose_runtime_is_not_installed_fails(paths):
    machine(paths.root, [("h10-hailort", "5.1.1"), ("hailo-gen-ai-model-zoo", "5.3.0", "hailort (= 5.3.0)")])
    check = stack_check(paths)
    assert check.status == "fail"
    assert "needs hailort 5.3.0, which is not installed (h10-hailort 5.1.1 is)" in check.found


def test_a_driver_package_newer_than_the_loaded_module_fails_saying_reboot(paths):
    machine(paths.root, [("h10-hailort", "5.3.0"), ("h10-hailort-pcie-driver", "5.3.0")], {"hailo1x_pci": "5.1.1"})
    check = stack_check(paths, (0, IDENTIFY.format("5.1.1")))
    assert check.status == "fail"
    assert "h10-hailort-pcie-driver 5.3.0 is installed but hailo1x_pci 5.1.1 is loaded: reboot needed" in check.found
    assert check.fix.startswith("sudo reboot") and "--reinstall h10-hailort-pcie-driver" in check.fix


def test_a_runtime_and_driver_package_that_differ_fail_with_align_then_reboot(paths):
    machine(paths.root, [("h10-hailort", "5.1.1"), ("h10-hailort-pcie-driver", "5.3.0")], {"hailo1x_pci": "5.3.0"})
    check = stack_check(paths)
    assert check.status == "fail"
    assert "runtime h10-hailort 5.1.1 but driver h10-hailort-pcie-driver 5.3.0" in check.found
    assert check.fix.startswith("align the versions on 5.1.1") and check.fix.endswith("load at boot)")


def test_firmware_that_differs_from_the_loaded_driver_fails(paths):
    healthy(paths.root, "5.3.0", "h10-hailort (= 5.3.0)")
    check = stack_check(paths, (0, IDENTIFY.format("5.1.1")))
    assert check.status == "fail"
    assert check.found == "hailo1x_pci 5.3.0 is loaded but the device runs firmware 5.1.1: reboot needed"
    assert check.fix.startswith("sudo reboot")


def test_firmware_that_differs_from_a_runtime_with_no_driver_seen_asks_to_align_the_packages(paths):
    machine(paths.root, [("hailort", "5.3.0")])  # a driver built by hand: no package, no /sys/module here
    check = stack_check(paths, (0, IDENTIFY.format("5.1.1")))
    assert check.status == "fail" and check.found == "runtime hailort 5.3.0 but the device runs firmware 5.1.1"
    assert check.fix.startswith("align the versions on 5.3.0")


def test_a_machine_without_any_hailo_piece_is_skipped_not_failed(paths):
    check = stack_check(paths)
    assert check.status == "skip"
    assert "no Hailo stack" in check.found and "hailortcli not available" in check.found
    assert check.versions == {"runtime": None, "driver_package": None, "driver_loaded": None, "firmware": None,
                              "zoo": None, "packages": {}}


def test_a_zoo_without_a_runtime_dependency_is_skipped_as_nothing_to_compare(paths):
    machine(paths.root, [("hailo-gen-ai-model-zoo", "5.1.1", "python3")])  # the test stand-in's Depends
    check = stack_check(paths)
    assert check.status == "skip" and "nothing to compare" in check.found


@pytest.mark.parametrize("runtime,driver,module,firmware", [
    ("5.1.1-1", "5.1.1-2+rpt1", "5.1.1", "5.1.1"),
    ("1:5.1.1+rpt20250101-1", "5.1.1~bpo12+1", "5.1.1", "5.1.1"),
])
def test_debian_revisions_epochs_and_suffixes_are_ignored(paths, runtime, driver, module, firmware):
    machine(paths.root, [("h10-hailort", runtime), ("h10-hailort-pcie-driver", driver),
                         ("hailo-gen-ai-model-zoo", "5.1.1-3", "h10-hailort (= 5.1.1-1)")], {"hailo1x_pci": module})
    check = stack_check(paths, (0, IDENTIFY.format(firmware)))
    assert check.status == "ok", check


@pytest.mark.parametrize("version,expected", [
    ("5.1.1", "5.1.1"), ("5.1.1-1", "5.1.1"), ("5.3.0+rpt1", "5.3.0"), ("1:4.17.0-1", "4.17.0"),
    ("5.1.1 (release,app)", "5.1.1"), ("v5.2.0", "5.2.0"), ("5.1", "5.1.0"), ("", None), (None, None),
    ("unknown", None),
])
def test_release_is_major_minor_patch(version, expected):
    assert stack.release(version) == expected


@pytest.mark.parametrize("text", [
    "\x00\xff garbage \n\n:::\n\n",
    "Package: h10-hailort\nStatus: install ok\nVersion: 5.1.1\n",      # a short Status
    "Package h10-hailort\nStatus install ok installed\n",                # no colons
    " continuation before any field\nPackage: h10-hailort\n",           # no Status at all
    "Status: install ok installed\nVersion: 5.1.1\n",                    # no Package
    "Package: h10-hailort\nStatus: install ok installed\n",              # no Version
])
def test_a_malformed_status_file_does_not_crash(paths, text):
    machine(paths.root, status_text=text)
    check = stack_check(paths)
    assert check.status in ("skip", "ok")


def test_a_status_file_that_is_not_utf8_or_unreadable_does_not_crash(paths):
    write(paths.root / "var/lib/dpkg/status", b"Package: h10-hailort\nStatus: install ok installed\n"
          b"Version: 5.1.1\nDescription: \xff\xfe\n")
    assert stack.read_status(paths.root)["h10-hailort"]["version"] == "5.1.1"
    (paths.root / "var/lib/dpkg/status").unlink()
    (paths.root / "var/lib/dpkg/status").mkdir()
    assert stack.read_status(paths.root) == {}


def test_only_packages_whose_files_are_on_disk_count(paths):
    machine(paths.root, [("h10-hailort", "5.3.0", "", "deinstall ok config-files"),
                         ("hailort", "4.23.0", "", "install ok not-installed"),
                         ("h10-hailort-pcie-driver", "5.1.1", "", "hold ok installed")])
    installed = stack.read_status(paths.root)
    assert set(installed) == {"h10-hailort-pcie-driver"}


def test_depends_alternatives_arch_qualifiers_and_folded_lines_are_understood(paths):
    text = ("Package: hailo-gen-ai-model-zoo\nStatus: install ok installed\nVersion: 5.3.0\n"
            "Depends: libc6 (>= 2.36),\n hailort:arm64 (= 5.3.0-1) | h10-hailort (= 5.3.0)\n\n"
            + stanza("h10-hailort", "5.3.0"))
    machine(paths.root, status_text=text)
    found = stack.read(paths.root, NO_HAILORTCLI)
    assert found.zoo_needs == stack.Need("h10-hailort", "=", "5.3.0")  # the alternative that is installed
    assert found.runtime and found.runtime.name == "h10-hailort"


def test_the_loaded_module_is_read_from_sys_module(paths):
    machine(paths.root, modules={"hailo_pci": "4.23.0", "hailo1x_pci": "5.1.1"})
    assert stack.loaded_module(paths.root) == stack.Piece("loaded driver", "hailo1x_pci", "5.1.1")
    assert stack.loaded_module(paths.root, prefer_hailo8=True).name == "hailo_pci"
    machine(paths.root / "other", modules={"hailo1x_pci": None})
    assert stack.loaded_module(paths.root / "other") == stack.Piece("loaded driver", "hailo1x_pci", None)


def test_a_hailo8_stack_on_hailort_and_hailo_dkms_is_compared_too(paths):
    machine(paths.root, [("hailort", "4.23.0-1"), ("hailo-dkms", "4.20.0-1"), ("hailo-all", "4.23.0")],
            {"hailo_pci": "4.20.0"})
    check = stack_check(paths)
    assert check.status == "fail" and "runtime hailort 4.23.0-1 but driver hailo-dkms 4.20.0-1" in check.found


@pytest.mark.parametrize("identify,note", [
    (NO_HAILORTCLI, "hailortcli not available"),
    ((124, "hailortcli: timed out after 3 s"), "hailortcli timed out"),
    ((76, "[HailoRT] [error] CHECK failed - Driver version (5.3.0) is different from library version (5.1.1)\n"
          "[HailoRT] [error] Driver version mismatch, status HAILO_INVALID_DRIVER_VERSION(76)"),
     "failed: [HailoRT] [error] Driver version mismatch"),
    ((0, "Device Architecture: HAILO10H\n"), "failed: Device Architecture: HAILO10H"),
])
def test_firmware_that_cannot_be_read_is_noted_not_compared(identify, note):
    version, why = stack.firmware_version(identify)
    assert version is None and note in why


def test_hailortcli_runs_once_for_the_firmware_and_stack_checks(paths):
    healthy(paths.root)
    run = runner((0, IDENTIFY.format("5.1.1")))
    host = Host(paths, run=run, is_root=True)
    assert doctor.check_firmware(host).status == "ok"
    assert doctor.check_stack(host).status == "ok"
    assert run.calls == [["hailortcli", "fw-control", "identify"]]


def test_the_json_report_carries_the_versions_found(paths):
    healthy(paths.root)
    write(paths.root / "var/lib/dpkg/status", (paths.root / "var/lib/dpkg/status").read_text()
          .replace("Version: 5.1.1\nDepends", "Version: 5.1.1-1\nDepends"))
    found = doctor.diagnose(Host(paths, run=runner((0, IDENTIFY.format("5.1.1"))), is_root=True, api_timeout=0.2))
    doc = json.loads(json.dumps(report.report_json(found)))
    assert doc["stack"] == {
        "runtime": {"package": "h10-hailort", "version": "5.1.1", "release": "5.1.1"},
        "driver_package": {"package": "h10-hailort-pcie-driver", "version": "5.1.1", "release": "5.1.1"},
        "driver_loaded": {"module": "hailo1x_pci", "version": "5.1.1", "release": "5.1.1"},
        "firmware": {"version": "5.1.1 (release,app,extended context switch buffer)", "release": "5.1.1"},
        "zoo": {"package": "hailo-gen-ai-model-zoo", "version": "5.1.1-1", "release": "5.1.1",
                "needs": {"package": "h10-hailort", "relation": "=", "version": "5.1.1", "release": "5.1.1"}},
        "packages": {"h10-hailort": "5.1.1", "h10-hailort-pcie-driver": "5.1.1", "hailo-h10-all": "5.1.1",
                     "hailo-gen-ai-model-zoo": "5.1.1-1"},
    }
    stack_line = next(c for c in doc["checks"] if c["id"] == "stack")
    assert set(stack_line) == {"id", "status", "found", "fix"} and stack_line["status"] == "ok"


def test_what_hailortcli_prints_is_escaped_before_it_reaches_the_report():
    version, note = stack.firmware_version((0, "Firmware Version: 5.1.1 \x1b]0;pwned\x07\x1b[2J\n"))
    assert version == "5.1.1 \\x1b]0;pwned\\x07\\x1b[2J" and note == ""
    assert stack.release(version) == "5.1.1"
    version, note = stack.firmware_version((1, "[HailoRT] [error] \x1b[31mCHECK failed\u202e\n"))
    assert version is None
    assert note == "hailortcli fw-control identify failed: [HailoRT] [error] \\x1b[31mCHECK failed\\u202e"
