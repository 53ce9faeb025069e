"""Package-level tests: the .deb builds, is lintian clean, ships what it must.

Run as root with ``/usr/bin/python3 -m pytest tests/package`` (the build
installs missing build dependencies itself). See conftest.py for HOS_DEB.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

import pytest

from hailo_ollama_service.constants import DOC_PAGES

from package_helpers import PACKAGE, REPO, changelog_version, need, run

DEBIAN = REPO / "debian"
SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
UNITS = ("hailo-ollama.service", "hailo-ollama-config.path", "hailo-ollama-config.service",
         "hailo-ollama-config-recheck.service",
         "hailo-ollama-warmup.service", "hailo-ollama-metrics.service", "hailo-ollama-metrics.timer",
         "hailo-ollama-keepwarm.service", "hailo-ollama-keepwarm.timer")
# Every argument dpkg (or debconf) passes to each script, per Debian policy.
ARGUMENTS = {
    "preinst": ("install", "upgrade", "abort-upgrade"),
    "postinst": ("configure", "triggered", "abort-upgrade", "abort-remove", "abort-deconfigure"),
    "prerm": ("remove", "upgrade", "deconfigure", "failed-upgrade"),
    "postrm": ("remove", "purge", "upgrade", "failed-upgrade", "abort-install", "abort-upgrade",
               "disappear"),
    "config": ("configure", "reconfigure"),
}


def unit_text(name: str) -> str:
    return (REPO / "systemd" / name).read_text()


def directives(text: str) -> list[tuple[str, str]]:
    """(key, value) of every directive of a unit file, comments dropped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.append((key.strip(), value.strip()))
    return out


def test_the_package_builds_as_an_all_deb_named_after_the_changelog_version(deb, fields):
    version = changelog_version()
    assert deb.name == f"{PACKAGE}_{version}_all.deb"
    assert fields["Package"] == PACKAGE
    assert fields["Version"] == version
    assert fields["Architecture"] == "all"


def test_lintian_reports_no_errors_and_no_warnings(built):
    need("lintian")
    targets = [str(built.deb)] + [str(p) for p in built.extras()]
    result = run(["lintian", "--pedantic", "--display-info", "--display-experimental", *targets],
                 check=False)
    report = result.stdout + result.stderr
    print(report)  # the full report, info tags included, for the record (pytest -s)
    bad = [line for line in report.splitlines() if line.startswith(("E:", "W:"))]
    assert not bad, "\n".join(bad)
    assert result.returncode == 0, report


def test_every_lintian_override_carries_a_comment_with_its_reason():
    for path in DEBIAN.glob("*lintian-overrides"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                assert number > 0 and lines[number - 1].startswith("#") or any(
                    earlier.startswith("#") for earlier in lines[max(0, number - 3):number]), \
                    f"{path.name}:{number + 1}: override without a comment: {line}"


def test_the_deb_ships_the_units_conffile_sysusers_udev_rule_and_command(contents):
    for unit in UNITS:
        assert f"/usr/lib/systemd/system/{unit}" in contents
    for path in ("/etc/hailo/hailo-ollama.yaml",
                 "/usr/lib/sysusers.d/hailo-ollama-service.conf",
                 "/usr/lib/udev/rules.d/50-hailo-ollama-service.rules",
                 "/usr/lib/python3/dist-packages/hailo_ollama_service/cli/main.py",
                 "/usr/lib/python3/dist-packages/hailo_ollama_service/root/render.py",
                 "/usr/lib/python3/dist-packages/hailo_ollama_service/user/serve.py",
                 "/usr/share/doc/hailo-ollama-service/copyright"):
        assert path in contents, path
    assert contents["/usr/bin/hailo-ollama-service"].startswith("-rwx")


def test_nothing_is_shipped_in_an_aliased_location_of_merged_usr(contents):
    """Trixie's lintian (aliased-location, DEP17): /lib, /bin, /sbin are links to /usr."""
    aliased = [p for p in contents if p.split("/")[1] in ("lib", "lib64", "bin", "sbin")]
    assert not aliased, aliased


def test_the_command_in_usr_bin_runs_the_packaged_cli_in_isolated_mode(unpacked):
    script = unpacked / "usr/bin/hailo-ollama-service"
    # -I: root's run from the unit (HOME=/var/lib/hailo-ollama) must not
    # import from the service user's site-packages; no entry-point scan.
    assert script.read_text().startswith("#!/usr/bin/python3 -I\n")
    assert "importlib" not in script.read_text() and "pkg_resources" not in script.read_text()
    result = run(["/usr/bin/python3", str(script), "--version"],
                 env={"PYTHONPATH": str(unpacked / "usr/lib/python3/dist-packages")})
    assert result.stdout.strip() == f"hailo-ollama-service {changelog_version()}"


def test_the_settings_file_is_the_only_conffile(control_dir):
    assert (control_dir / "conffiles").read_text().split() == ["/etc/hailo/hailo-ollama.yaml"]


def test_the_trigger_watches_upstream_manifests_without_awaiting(control_dir):
    lines = [line.split("#")[0].split() for line in (control_dir / "triggers").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert ["interest-noawait", "/usr/share/hailo-ollama/models/manifests"] in lines
    assert all(line[0] == "interest-noawait" for line in lines)


def test_the_control_area_has_templates_and_an_executable_config_script(control_dir):
    templates = (control_dir / "templates").read_text()
    for question in ("host", "port", "library-host", "library-port", "memory-max", "cpu-quota",
                     "group-id", "warmup-model", "pinned", "invalid"):
        assert f"Template: hailo-ollama-service/{question}\n" in templates
    config = control_dir / "config"
    assert config.stat().st_mode & 0o111
    assert ". /usr/share/debconf/confmodule" in config.read_text()


def test_the_control_fields_follow_the_design(fields):
    assert fields["Section"] == "admin"
    assert fields["Priority"] == "optional"
    assert fields["Maintainer"]


def test_depends_names_upstream_yaml_ucf_debconf_and_a_sysusers_provider(fields):
    depends = [alt.strip() for alt in fields["Depends"].split(",")]
    names = {re.split(r"[ (]", alt)[0] for alt in depends}
    for needed in ("hailo-gen-ai-model-zoo", "python3-yaml", "ucf"):
        assert needed in names, needed
    assert any(alt.startswith("debconf") for alt in depends)
    assert any("systemd-sysusers" in alt or alt.startswith("systemd ") or alt == "systemd"
               for alt in depends)


def test_no_recommends_drag_in_the_hailo_stack(fields):
    related = " ".join(fields.get(key, "") for key in ("Recommends", "Pre-Depends"))
    assert "hailo" not in related and "h10-" not in related


def test_the_source_control_declares_a_rootless_native_debhelper_13_build():
    control = (DEBIAN / "control").read_text()
    assert "Rules-Requires-Root: no" in control
    assert "Standards-Version: 4.6.2" in control
    assert "debhelper-compat (= 13)" in control
    for dep in ("dh-python", "python3-all", "python3-setuptools", "python3-yaml", "python3-pytest", "po-debconf"):
        assert re.search(rf"\b{re.escape(dep)}\b", control), dep
    assert (DEBIAN / "source" / "format").read_text().strip() == "3.0 (native)"


def test_the_source_maintainer_scripts_pass_shellcheck():
    need("shellcheck")
    files = [str(DEBIAN / f"{PACKAGE}.{name}") for name in SCRIPTS]
    result = run(["shellcheck", "--shell=sh", *files], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_built_maintainer_scripts_pass_shellcheck(control_dir):
    need("shellcheck")
    files = [str(control_dir / name) for name in SCRIPTS if (control_dir / name).exists()]
    assert len(files) == len(SCRIPTS)
    # SC1091: debhelper's postrm snippet sources debconf's library, which
    # shellcheck is not given; everything else must be clean.
    result = run(["shellcheck", "--shell=sh", "--exclude=SC1091", *files], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_autopkgtest_scripts_pass_shellcheck():
    need("shellcheck")
    scripts = sorted(p for p in (DEBIAN / "tests").iterdir() if p.name != "control")
    assert scripts, "no autopkgtest scripts in debian/tests"
    result = run(["shellcheck", *map(str, scripts)], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_autopkgtest_named_in_the_control_file_exists_and_is_executable():
    control = (DEBIAN / "tests" / "control").read_text()
    names = [name for line in control.splitlines() if line.startswith("Tests:")
             for name in line.split(":", 1)[1].replace(",", " ").split()]
    assert names
    for name in names:
        path = DEBIAN / "tests" / name
        assert path.is_file() and os.access(path, os.X_OK), path


def test_tools_build_deb_passes_shellcheck():
    need("shellcheck")
    result = run(["shellcheck", str(REPO / "tools" / "build-deb")], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_maintainer_script_is_posix_sh_with_set_e_and_a_case_naming_every_argument(name):
    text = (DEBIAN / f"{PACKAGE}.{name}").read_text()
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^set -e$", text, re.M)
    if name != "config":
        assert re.search(r"^#DEBHELPER#$", text, re.M)
    assert 'case "$1" in' in text
    for argument in ARGUMENTS[name]:
        assert re.search(rf"^\s+(?:[a-z-]+\|)*{re.escape(argument)}(?:\|[a-z-]+)*\)", text, re.M), \
            f"{name} does not name '{argument}'"
    # An unknown argument is an error, not silently accepted.
    assert re.search(r"^\s+\*\)\n.*\n\s+exit 1", text, re.M)


def test_maintainer_scripts_guard_systemd_calls_for_chroots_without_systemd():
    for name in SCRIPTS:
        text = (DEBIAN / f"{PACKAGE}.{name}").read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        if re.search(r"\b(systemctl|deb-systemd-invoke)\b", code):
            assert "/run/systemd/system" in code, name


def test_the_package_version_equals_the_changelog_and_the_python_version(deb, fields, unpacked):
    version = changelog_version()
    source = (REPO / "hailo_ollama_service" / "__init__.py").read_text()
    assert re.search(rf'^__version__ = "{re.escape(version)}"$', source, re.M)
    assert fields["Version"] == version
    packaged = (unpacked / "usr/lib/python3/dist-packages/hailo_ollama_service/__init__.py").read_text()
    assert re.search(rf'^__version__ = "{re.escape(version)}"$', packaged, re.M)


def test_the_units_pass_systemd_analyze_verify(unpacked, tmp_path):
    need("systemd-analyze")
    # A root with the host's own units (targets) and stand-ins for the two
    # binaries, so that verify checks our units and nothing else.
    root = tmp_path / "root"
    shutil.copytree(unpacked, root, symlinks=True)
    for system_dir in (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system")):
        if system_dir.is_dir() and not system_dir.is_symlink():
            shutil.copytree(system_dir, root / system_dir.relative_to("/"), symlinks=True,
                            dirs_exist_ok=True)
    fake = root / "usr/bin/hailo-ollama"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    result = run(["systemd-analyze", "verify", "--man=no", f"--root={root}",
                  *[f"/usr/lib/systemd/system/{unit}" for unit in UNITS]], check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


def test_the_server_unit_runs_upstream_as_the_service_user_with_the_seed_environment():
    found = directives(unit_text("hailo-ollama.service"))
    pairs = set(found)
    for pair in [("Type", "exec"),
                 ("ExecStart", "/usr/bin/hailo-ollama-service serve"),
                 ("ExecStartPre", "+/usr/bin/hailo-ollama-service render --keep-last-good"),
                 ("Restart", "always"), ("RestartSec", "5"),
                 ("User", "hailo-ollama"), ("Group", "hailo-ollama"), ("SupplementaryGroups", "hailo"),
                 ("After", "network-online.target"), ("Wants", "network-online.target"),
                 ("Environment", "XDG_CONFIG_HOME=/etc/xdg"), ("Environment", "XDG_CONFIG_DIRS=/etc/xdg"),
                 ("Environment", "XDG_DATA_HOME=/var/lib"), ("Environment", "XDG_DATA_DIRS=/usr/share"),
                 ("Environment", "HOME=/var/lib/hailo-ollama"),
                 ("Environment", "HAILORT_LOGGER_PATH=/var/log/hailo-ollama"),
                 ("EnvironmentFile", "-/run/hailo-ollama/hailo-ollama.env"),
                 ("StateDirectory", "hailo-ollama"), ("LogsDirectory", "hailo-ollama"),
                 ("WorkingDirectory", "/var/lib/hailo-ollama"), ("WantedBy", "multi-user.target"),
                 ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", "")]:
        assert pair in pairs, pair
    # root's render, the only step outside the sandbox; the service user's
    # model step runs in ExecStart= before it becomes the server (user/serve.py)
    assert [value for key, value in found if key == "ExecStartPre"] == [
        "+/usr/bin/hailo-ollama-service render --keep-last-good"]
    post = dict(found)["ExecStartPost"]
    timeout = float(re.search(r"--timeout (\d+)", post).group(1))
    assert post.startswith("/usr/bin/hailo-ollama-service wait-ready")
    assert timeout < float(dict(found)["TimeoutStartSec"])


def test_the_server_unit_keeps_the_hailo_device_reachable():
    found = dict(directives(unit_text("hailo-ollama.service")))
    assert found.get("PrivateDevices", "no") == "no"
    assert found.get("DevicePolicy", "auto") == "auto"
    # DeviceAllow= (also implied by ProtectClock=) turns on the allow-list.
    assert "DeviceAllow" not in found and "ProtectClock" not in found
    assert "PrivateUsers" not in found


def test_no_unit_gives_up_after_a_burst_of_starts():
    for unit in ("hailo-ollama.service", "hailo-ollama-config.service", "hailo-ollama-config-recheck.service"):
        assert ("StartLimitIntervalSec", "0") in directives(unit_text(unit)), unit


def test_the_path_unit_watches_the_conffile_and_the_layer_directory():
    found = directives(unit_text("hailo-ollama-config.path"))
    assert ("PathChanged", "/etc/hailo/hailo-ollama.yaml") in found
    assert ("PathChanged", "/etc/hailo/hailo-ollama.d") in found
    assert ("Unit", "hailo-ollama-config.service") in found
    oneshot = directives(unit_text("hailo-ollama-config.service"))
    assert ("Type", "oneshot") in oneshot
    assert ("ExecStart", "/usr/bin/hailo-ollama-service render --keep-last-good --try-restart") in oneshot
    assert not any(key == "WantedBy" for key, _ in oneshot)
    # the second pass that catches an edit landing as the first one ends
    assert ("OnSuccess", "hailo-ollama-config-recheck.service") in oneshot
    recheck = directives(unit_text("hailo-ollama-config-recheck.service"))
    assert ("Type", "oneshot") in recheck
    assert ("ExecStart", "/usr/bin/hailo-ollama-service render --keep-last-good --try-restart") in recheck
    assert not any(key in ("WantedBy", "OnSuccess") for key, _ in recheck)


def test_neither_debhelper_nor_dpkg_reconfigure_restarts_the_server(control_dir):
    postinst = (control_dir / "postinst").read_text()
    assert "_dh_action=restart" not in postinst
    assert not re.search(r"deb-systemd-invoke (restart|\$_dh_action)", postinst)
    preinst = (DEBIAN / f"{PACKAGE}.preinst").read_text()
    assert "DEBCONF_RECONFIGURE" in preinst
    # The skip happens before debhelper's "stop on upgrade" snippet.
    assert preinst.index("DEBCONF_RECONFIGURE") < preinst.index("#DEBHELPER#")


def test_the_service_user_exists_before_the_postinst_renders(control_dir):
    postinst = (control_dir / "postinst").read_text()
    assert postinst.index("systemd-sysusers") < postinst.index("render --keep-last-good --try-restart")
    assert postinst.index("preflight") < postinst.index("deb-systemd-invoke start")
    assert postinst.index("render --keep-last-good --try-restart") < postinst.index(
        "deb-systemd-invoke start")


def test_the_udev_rule_sets_group_hailo_and_a_mode_only_where_the_driver_sets_none(unpacked):
    rules = [line for line in
             (unpacked / "usr/lib/udev/rules.d/50-hailo-ollama-service.rules").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    chardev = [line for line in rules if 'SUBSYSTEM=="hailo_chardev"' in line]
    hailo1x = [line for line in rules if 'SUBSYSTEM=="hailo1x"' in line]
    assert len(chardev) == 1 and len(hailo1x) == 1
    assert 'GROUP="hailo"' in chardev[0] and "MODE" not in chardev[0]
    assert 'GROUP="hailo"' in hailo1x[0] and 'MODE="0660"' in hailo1x[0]
    # Plain assignments only: a later rule (the driver's 51-) still wins.
    assert ":=" not in "\n".join(rules)


def test_the_sysusers_file_creates_the_service_user_in_group_hailo(unpacked):
    lines = [line.split() for line in
             (unpacked / "usr/lib/sysusers.d/hailo-ollama-service.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    user = [line for line in lines if line[0] == "u"]
    assert user and user[0][1] == "hailo-ollama"
    assert "/var/lib/hailo-ollama" in user[0] and "/usr/sbin/nologin" in user[0]
    assert ["g", "hailo", "-"] in lines
    assert ["m", "hailo-ollama", "hailo"] in lines
    assert not any(line[0] == "u!" for line in lines)  # systemd 252 does not know it


def test_the_postrm_deletes_the_rendered_json_before_removing_the_diversion():
    postrm = (DEBIAN / f"{PACKAGE}.postrm").read_text()
    remove = postrm.index("dpkg-divert --package")
    assert postrm.index('rm -f "$JSON"') < remove
    assert "--rename --remove" in postrm
    preinst = (DEBIAN / f"{PACKAGE}.preinst").read_text()
    assert "--divert \"$JSON.distrib\" --add \"$JSON\"" in preinst and "--rename" in preinst


def test_the_debconf_template_pot_is_up_to_date(tmp_path):
    need("debconf-updatepo")
    copy = tmp_path / "debian"
    shutil.copytree(DEBIAN, copy)
    run(["debconf-updatepo"], cwd=tmp_path)

    def msgids(path: Path) -> list[str]:
        return re.findall(r'^msgid (".*"(?:\n".*")*)', path.read_text(), re.M)

    assert msgids(copy / "po" / "templates.pot") == msgids(DEBIAN / "po" / "templates.pot"), \
        "debian/templates changed: run debconf-updatepo"


def test_the_generated_man_pages_and_bash_completion_are_shipped(contents, unpacked):
    for path in ("/usr/share/man/man8/hailo-ollama-service.8.gz",
                 "/usr/share/man/man5/hailo-ollama.yaml.5.gz",
                 "/usr/share/bash-completion/completions/hailo-ollama-service"):
        assert path in contents, path
    completion = (unpacked / "usr/share/bash-completion/completions/hailo-ollama-service").read_text()
    assert "complete " in completion and "render" in completion


def test_the_readme_and_the_pi_owners_pages_are_installed_and_the_man_pages_point_there(contents, unpacked):
    doc = "/usr/share/doc/hailo-ollama-service"
    pages = ["README.md"] + [f"docs/{page}.md" for page in DOC_PAGES]
    for page in pages:
        # dh_compress compresses what is larger than 4 KiB
        assert f"{doc}/{page}" in contents or f"{doc}/{page}.gz" in contents, page
        installed = unpacked / doc.lstrip("/") / page
        text = (gzip.decompress(installed.with_name(installed.name + ".gz").read_bytes()).decode()
                if not installed.exists() else installed.read_text())
        assert text == (REPO / page).read_text(), f"{page}: not the page of the source tree"
    assert not any("contributing" in path for path in contents)
    for man in ("man8/hailo-ollama-service.8.gz", "man5/hailo-ollama.yaml.5.gz"):
        roff = gzip.decompress((unpacked / "usr/share/man" / man).read_bytes()).decode()
        assert "/usr/share/doc/hailo\\-ollama\\-service/" in roff, man


def test_the_build_leaves_the_source_tree_clean(built):
    if not built.built_here:
        pytest.skip("HOS_DEB given: this session did not build")
    for leftover in ("debian/.debhelper", f"debian/{PACKAGE}", "debian/files", ".pybuild",
                     "debian/generated",
                     f"debian/{PACKAGE}.substvars"):
        assert not (REPO / leftover).exists(), leftover


def test_build_deb_sets_another_version_in_the_changelog_and_the_python_package(tmp_path):
    result = run([str(REPO / "tools" / "build-deb"), "--version", "0.9.0", "--outdir", str(tmp_path)],
                 env={"DEB_BUILD_OPTIONS": "nocheck"})
    deb = Path(result.stdout.strip().splitlines()[-1])
    assert deb == tmp_path / f"{PACKAGE}_0.9.0_all.deb"
    assert run(["dpkg-deb", "--field", str(deb), "Version"]).stdout.strip() == "0.9.0"
    files = tmp_path / "files"
    run(["dpkg-deb", "--extract", str(deb), str(files)])
    init = (files / "usr/lib/python3/dist-packages/hailo_ollama_service/__init__.py").read_text()
    assert '__version__ = "0.9.0"' in init
    # The source tree itself is untouched.
    assert changelog_version() != "0.9.0"


def test_the_metrics_timer_runs_a_oneshot_only_where_node_exporter_keeps_its_textfiles():
    timer = dict(directives(unit_text("hailo-ollama-metrics.timer")))
    assert timer["OnUnitActiveSec"] == "1min" and timer["WantedBy"] == "timers.target"
    found = directives(unit_text("hailo-ollama-metrics.service"))
    unit = dict(found)
    assert unit["ConditionPathIsDirectory"] == "/var/lib/prometheus/node-exporter"
    assert unit["Type"] == "oneshot" and unit["User"] == "hailo-ollama" and "SupplementaryGroups" not in unit
    assert unit["ExecStart"] == ("/usr/bin/hailo-ollama-service metrics --output "
                                 "/run/hailo-ollama-metrics/hailo-ollama.prom")
    assert unit["ExecStartPost"] == "+/usr/bin/hailo-ollama-service metrics-publish"
    sandbox = ("Protect", "Private", "Restrict", "NoNewPrivileges", "LockPersonality", "MemoryDeny",
               "SystemCall", "Capability")
    warmup = {pair for pair in directives(unit_text("hailo-ollama-warmup.service")) if pair[0].startswith(sandbox)}
    # PrivateDevices=yes would hide the device nodes the metrics report on; see the unit's comment
    assert warmup - set(found) == {("PrivateDevices", "yes")}, "the metrics sandbox must be at least the warm-up's"
    assert ("DevicePolicy", "closed") in found
