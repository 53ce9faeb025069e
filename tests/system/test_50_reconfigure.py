"""Life cycle 8: dpkg-reconfigure with a preseeded port."""

import pytest

import product

pytestmark = pytest.mark.system


def test_dpkg_reconfigure_with_a_preseeded_port_moves_the_server(installed_system):
    c = installed_system
    product.preseed(c, "port", "11500")
    r = product.reconfigure(c)
    assert r.rc == 0, r.output
    assert product.wait_answering(c, 11500, timeout=30), f"not answering on 11500:\n{r.output}"
    assert product.wait_for(lambda: not product.answers(c, 11434), 10)
    assert product.server_port(c) == 11500
    assert "11500" in c.read_file(product.DEBCONF_LAYER)
    assert product.debconf_value(c, "port") == "11500"


def test_reconfiguring_without_a_change_does_not_restart_the_server(installed_system):
    c = installed_system
    product.preseed(c, "port", "11500")
    assert product.reconfigure(c).rc == 0
    assert product.wait_answering(c, 11500, timeout=30)
    pid = product.main_pid(c)
    restarts = c.unit_property(product.UNIT, "NRestarts")
    r = product.reconfigure(c)
    assert r.rc == 0, r.output
    assert product.answers(c, 11500)
    assert product.main_pid(c) == pid, "reconfiguring without a change restarted the server"
    assert c.unit_property(product.UNIT, "NRestarts") == restarts
