"""Life cycle 15: piuparts install -> purge and install -> upgrade -> purge,
with the stand-in (and the previous release, 1.0.0 as released) served from a
local repository."""

import shutil
import subprocess

import pytest

import harness
import product

pytestmark = pytest.mark.system

PIUPARTS_TIMEOUT = 1200
# Trixie's debconf has apt-extracttemplates unpack the templates of every
# package with a config script into /var/cache/debconf/tmp.ci/, a directory of
# debconf's own that stays. Bookworm's piuparts (the host's) does not know it.
IGNORE = ["--ignore=/var/cache/debconf/tmp.ci/"]


@pytest.fixture(scope="module")
def piuparts_setup(prerequisites, debs, hos_deb, hos_previous_deb, standin_debs, tmp_path_factory):
    if shutil.which("piuparts") is None:
        message = "piuparts is not installed (apt-get install piuparts)"
        if harness.ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    if shutil.which("dpkg-scanpackages") is None:
        pytest.fail("dpkg-scanpackages is missing (apt-get install dpkg-dev)")
    try:
        base = harness.ensure_piuparts_tarball()
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the piuparts base tarball: {e}", pytrace=False)
    repo = tmp_path_factory.mktemp("piuparts-repo")
    repo.chmod(0o755)
    for deb in (debs.standin("5.1.1"), debs.standin("5.1.2"), hos_previous_deb):
        shutil.copy(deb, repo / deb.name)
    packages = subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=repo,
                              capture_output=True, text=True, check=True).stdout
    (repo / "Packages").write_text(packages)
    # piuparts runs apt inside its chroot as _apt: every component must be readable
    p = repo
    while p != p.parent:
        p.chmod(p.stat().st_mode | 0o005)
        p = p.parent
    logs = tmp_path_factory.mktemp("piuparts-logs")
    return {"base": base, "repo": repo, "logs": logs}


def _piuparts(setup, hos_deb, name, *options):
    log = setup["logs"] / f"{name}.log"
    cmd = ["piuparts", f"--basetgz={setup['base']}", f"--distribution={harness.SUITE}",
           f"--mirror={harness.MIRROR} main",
           f"--extra-repo=deb [trusted=yes] file://{setup['repo']} ./",
           f"--bindmount={setup['repo']}", f"--log-file={log}", "--no-adequate", *IGNORE,
           *options, str(hos_deb)]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=PIUPARTS_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"piuparts {name} timed out after {PIUPARTS_TIMEOUT}s")
    text = log.read_text(errors="replace") if log.exists() else cp.stdout + cp.stderr
    return cp.returncode, text


def _summary(text):
    keep = [l for l in text.splitlines()
            if any(k in l for k in ("ERROR", "FAIL", "WARN", "dpkg:", "E:", "PASS"))]
    return "\n".join(keep[-80:]) + "\n----- tail -----\n" + "\n".join(text.splitlines()[-60:])


def test_piuparts_install_and_purge_passes(piuparts_setup, hos_deb):
    rc, text = _piuparts(piuparts_setup, hos_deb, "install-purge", "--no-upgrade-test")
    assert rc == 0, _summary(text)
    assert "PASS: Installation and purging test." in text, _summary(text)


def test_piuparts_install_upgrade_and_purge_passes(piuparts_setup, hos_deb, hos_previous_deb):
    rc, text = _piuparts(piuparts_setup, hos_deb, "install-upgrade-purge", "--no-install-purge-test")
    assert rc == 0, _summary(text)
    assert "PASS: Installation, upgrade and purging tests." in text, _summary(text)
    assert product.deb_field(hos_previous_deb, "Version") in text, "the upgrade did not start from the previous version"
