"""Life cycle 5-6: reboot, and kill -9 of the server."""

import pytest

import product

pytestmark = pytest.mark.system


def _seconds(value: str) -> float:
    """systemd's '5s', '1min 30s', '100ms' ... in seconds."""
    total = 0.0
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}
    for part in value.split():
        num = "".join(ch for ch in part if ch.isdigit() or ch == ".")
        unit = part[len(num):] or "s"
        total += float(num) * units.get(unit, 1)
    return total


def test_a_killed_server_is_restarted_and_answers_again(installed_system):
    c = installed_system
    old = product.main_pid(c)
    assert old > 0
    restart_sec = _seconds(c.unit_property(product.UNIT, "RestartUSec"))
    start_timeout = _seconds(c.unit_property(product.UNIT, "TimeoutStartUSec"))
    c.exec(["kill", "-9", str(old)])
    bound = restart_sec + min(start_timeout, 60) + 15
    new = product.wait_for(lambda: (lambda p: p if p and p != old else 0)(product.main_pid(c)),
                           timeout=bound)
    assert new, f"no new MainPID within {bound:.0f}s (RestartSec {restart_sec}s)"
    assert product.wait_answering(c, timeout=bound), "the restarted server does not answer"
    assert product.wait_for(lambda: product.is_active(c) == "active", bound), product.is_active(c)
    assert product.main_pid(c) == new, "restarted more than once"


def test_after_a_reboot_the_service_is_active_with_the_same_models(installed_system, model):
    c = installed_system
    product.ensure_pulled(c, model)
    tags, listed = product.tag_names(c), product.listed_models(c)
    c.reboot()
    assert product.wait_for(lambda: product.is_active(c) == "active", 90), product.is_active(c)
    assert product.wait_answering(c, timeout=60)
    assert product.tag_names(c) == tags
    assert product.listed_models(c) == listed
    assert product.is_enabled(c) == "enabled"
    assert product.rendered_json(c) == product.SEED
