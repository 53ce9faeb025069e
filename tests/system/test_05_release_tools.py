"""The release's own tools on what we ship: its lintian on the package a user
of that release installs, and its python3 (3.11 on bookworm, 3.13 on trixie)
on the unit tests, deprecations as errors.  They run in a read-only tree of
the release (harness.ensure_tools_root), not in a booted system."""

import pytest

import harness
import product

pytestmark = pytest.mark.system


def _in_release(cmd, binds, **kw):
    try:
        return harness.run_in_tools_root(cmd, binds, **kw)
    except harness.HarnessError as e:
        pytest.fail(f"cannot run {cmd[0]} in the {harness.SUITE} tools root: {e}", pytrace=False)


def test_the_package_is_clean_under_the_releases_lintian(hos_deb):
    r = _in_release(["lintian", "--pedantic", "--display-info", "--display-experimental",
                     f"/tmp/debs/{hos_deb.name}"], {str(hos_deb.parent): "/tmp/debs"})
    print(r.stdout)
    bad = [line for line in r.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert not bad, f"lintian of Debian {harness.SUITE}:\n" + "\n".join(bad)
    assert r.returncode == 0, r.stdout[-3000:]


def test_the_unit_tests_pass_under_the_releases_python(tmp_path):
    r = _in_release(["python3", "-W", "error::DeprecationWarning", "-m", "pytest", "-q",
                     "-p", "no:cacheprovider", "tests/unit"],
                    {str(product.REPO): "/tmp/src"}, cwd="/tmp/src", timeout=600)
    version = _in_release(["python3", "--version"], {}).stdout.split()[1]
    assert r.returncode == 0, f"unit tests under Debian {harness.SUITE}'s Python {version}:\n{r.stdout[-6000:]}"
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-3000:]
