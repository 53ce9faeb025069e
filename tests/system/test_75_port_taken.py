"""Life cycle 12: another program holds 11434 at install time."""

import pytest

import harness
import product

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def squatted(base_root, debs, hos_deb):
    """A container where `python3 -m http.server 11434` runs while we install."""
    c = harness.Container("port-taken", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs)
        c.exec(["systemd-run", "--unit=squatter", "--", "python3", "-m", "http.server", "11434"])
        assert product.wait_for(lambda: c.exec(["curl", "-fsS", "-o", "/dev/null",
                                                "http://127.0.0.1:11434/"], check=False).rc == 0, 20)
        c.install_result = product.apt_install(c, hos_deb)
        yield c
    finally:
        c.destroy()


def test_install_completes_when_the_port_is_taken(squatted):
    r = squatted.install_result
    assert r.rc == 0, r.output
    assert r.duration < 120, f"install took {r.duration:.0f}s"
    assert product.installed(squatted)


def test_the_install_output_names_the_program_holding_the_port_and_the_fix(squatted):
    out = squatted.install_result.output
    assert "11434" in out, out
    assert "python3" in out, f"the program holding 11434 is not named:\n{out}"
    assert any(fix in out for fix in ("dpkg-reconfigure", product.CONFFILE, "server.port")), (
        f"no fix (dpkg-reconfigure / {product.CONFFILE}) named:\n{out}")


def test_the_service_comes_up_by_itself_once_the_port_is_free(squatted):
    c = squatted
    c.systemctl("stop", "squatter.service", check=True)
    assert product.wait_for(lambda: product.answers(c), 90), (
        "the service did not take 11434 over after the other program stopped:\n" + c.diagnostics())
    assert product.wait_for(lambda: product.is_active(c) == "active", 60), product.is_active(c)
