"""pytest fixtures for the booted-container system tests.

Run:  /usr/bin/python3 -m pytest tests/system -m system [--suite=trixie]   (as root)

The release comes from --suite, else HOS_SUITE, else bookworm.  A test
marked `release_independent` runs on one release only (RELEASE_INDEPENDENT_SUITE,
or the release the marker names, which balances the two suites that run at once):
it checks nothing that differs between releases, and `make check` runs the
suite once per release.

The whole suite is skipped when not root or when systemd-nspawn/mmdebstrap
are missing -- except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import product  # noqa: E402

ON_CI = harness.ON_CI


def _missing() -> list[str]:
    return harness.prerequisites()


# The release the tests marked `release_independent` run on: the one a new Pi
# owner has.
RELEASE_INDEPENDENT_SUITE = "trixie"


def pytest_addoption(parser):
    parser.addoption("--suite", default=None, choices=harness.SUPPORTED_SUITES,
                     help="Debian release of the booted containers (default: $HOS_SUITE or bookworm)")


def pytest_configure(config):
    harness.install_signal_handlers()
    suite = config.getoption("suite")
    if suite:
        harness.set_suite(suite)
        os.environ["HOS_SUITE"] = suite  # for tools the tests start (tools/demo)


def pytest_report_header(config):
    return f"booted system tests on Debian {harness.SUITE}"


def release_of(item) -> str | None:
    """The one release ITEM runs on when it is marked release_independent:
    the marker's argument, else RELEASE_INDEPENDENT_SUITE; None otherwise."""
    marker = item.get_closest_marker("release_independent")
    if marker is None:
        return None
    return marker.args[0] if marker.args else RELEASE_INDEPENDENT_SUITE


def pytest_collection_modifyitems(config, items):
    other = [i for i in items if release_of(i) not in (None, harness.SUITE)]
    if other:  # they ran (or run) on the other release
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]
    missing = _missing()
    if not missing or ON_CI:
        return
    skip = pytest.mark.skip(reason="system tests need " + ", ".join(missing))
    for item in items:
        if "system" in item.keywords and Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the journal and `systemctl status` of every live
    container, so CI logs show why."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call") and Path(str(item.fspath)).is_relative_to(HERE):
        for c in harness.live_containers():
            if c.running:
                report.sections.append((f"container {c.name}: journal and status", c.diagnostics()))


@pytest.fixture(scope="session")
def prerequisites():
    missing = _missing()
    if missing:
        message = "system tests need " + ", ".join(missing)
        if ON_CI:
            pytest.fail(message + " (CI=true: missing prerequisites are a failure)", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def base_root(prerequisites):
    try:
        return harness.ensure_root()
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the {harness.SUITE} root: {e}", pytrace=False)


@pytest.fixture(scope="session")
def debs(prerequisites, tmp_path_factory):
    return product.Debs(tmp_path_factory.mktemp("debs"))


def _need(callable_, what: str):
    try:
        return callable_()
    except product.ProductError as e:
        pytest.fail(f"cannot get {what}: {e}", pytrace=False)


@pytest.fixture(scope="session")
def hos_deb(debs):
    return _need(lambda: debs.hos, "the hailo-ollama-service .deb")


@pytest.fixture(scope="session")
def hos_previous_deb(debs):
    return _need(lambda: debs.hos_previous, "the previous hailo-ollama-service .deb")


@pytest.fixture(scope="session")
def real_server_deb(debs):
    return _need(lambda: debs.real_server, "the real server's package")


@pytest.fixture(scope="session")
def hos_last_release_deb(debs):
    return _need(lambda: debs.hos_last_release, "the last released hailo-ollama-service .deb")


@pytest.fixture(scope="session")
def standin_debs(debs):
    return _need(lambda: debs.standin_dir, "the stand-in .debs")


@pytest.fixture(scope="session")
def shipped_conffile(hos_deb):
    return product.deb_file(hos_deb, product.CONFFILE).decode()


@pytest.fixture
def container(base_root, request):
    """A fresh booted container of its own (nothing of ours installed)."""
    c = harness.Container(request.node.name[:24].replace("[", "-").replace("]", ""), root=base_root)
    try:
        c.boot()
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="session")
def system(base_root, hos_deb, standin_debs, debs):
    """The shared container: stand-in 5.1.1 and hailo-ollama-service installed
    with `apt install ./*.deb`, no device.  `system.install_result` holds the
    install's result (the install test checks it)."""
    c = harness.Container("system", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs, "5.1.1")
        c.had_device_at_install = c.exists("/dev/hailo0") or c.exists("/dev/h1x-0")
        c.install_result = product.apt_install(c, hos_deb, timeout=600)
        yield c
    finally:
        c.destroy()


@pytest.fixture
def installed_system(system, debs, shipped_conffile):
    """The shared container, reset to the state after a plain install."""
    if system.install_result.rc != 0 and not product.installed(system):
        pytest.fail("the install in the shared container failed:\n" + system.install_result.output[-4000:],
                    pytrace=False)
    if not system.running:
        system.boot()
    product.reset(system, debs, shipped_conffile)
    return system


@pytest.fixture(scope="session")
def model(system):
    """A model name shipped by the stand-in (qwen2:1.5b when present)."""
    names = sorted(product.shipped_models(system))
    return "qwen2:1.5b" if "qwen2:1.5b" in names else names[0]
