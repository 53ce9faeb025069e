"""warmup.keep_loaded on a booted system: a timer keeps the model loaded, off by default.

One container of its own, with a device node and two stand-in knobs: a
default keep-alive of 5 s instead of upstream's 5 minutes, and a load that
takes 2 s; a load is visible as upstream's log line "replacing model to".
"""

from __future__ import annotations

import time

import pytest

import harness
import product

pytestmark = pytest.mark.system

TIMER = "hailo-ollama-keepwarm.timer"
SERVICE = "hailo-ollama-keepwarm.service"
FLAG = "/var/lib/hailo-ollama-service/keep-loaded"
KEEP_ALIVE = 5
LOAD_DELAY = 2.0
MODEL = "qwen2:1.5b"


@pytest.fixture(scope="module")
def pi(base_root, hos_deb, standin_debs, debs):
    c = harness.Container("keepwarm", root=base_root)
    try:
        c.boot()
        product.install_standin(c, debs, "5.1.1")
        r = product.apt_install(c, hos_deb)
        assert r.rc == 0, r.output
        c.add_device("/dev/hailo0", mode="0666")
        c.write_file(f"{product.STANDIN_CONTROL}/default-keep-alive", f"{KEEP_ALIVE}\n")
        c.write_file(f"{product.STANDIN_CONTROL}/load-delay", f"{LOAD_DELAY}\n")
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        product.ensure_pulled(c, MODEL)
        c.shipped = c.read_file(product.CONFFILE)
        yield c
    finally:
        c.destroy()


def loaded(c) -> list:
    status, body = product.api(c, "GET", "/api/ps")
    assert status == 200, body
    return body["models"]


def chat(c) -> dict:
    status, body = product.api(c, "POST", "/api/chat", timeout=60, body={
        "model": MODEL, "stream": False, "messages": [{"role": "user", "content": "Hi"}]})
    assert status == 200 and body.get("done"), body
    return body


LOADED_LINE = "replacing model to"  # upstream's log line of a model load (GenerationThread)


def loads_since(c, since: str) -> int:
    """Model loads the server logged since SINCE (container clock)."""
    return product.journal_text(c, since=since, unit=product.UNIT).count(LOADED_LINE)


def never_expires(model: dict) -> bool:
    """keep_alive < 0 in /api/ps: the real 5.1.1 server shows an expiry before
    1970 (its "never"), a bounded one is in the future."""
    return model.get("expires_at", "")[:4] < "1970"


def set_keep_loaded(c, on: bool) -> None:
    text = c.shipped + f"\nwarmup:\n  model: {MODEL}\n  keep_loaded: {'true' if on else 'false'}\n"
    product.write_conffile(c, text, how="cp")
    assert product.wait_for(lambda: c.exists(FLAG) == on, 30), c.journal(unit=product.CONFIG_UNIT, lines=30)
    assert product.settle(c)


def test_off_by_default_the_timer_is_inactive_and_an_idle_model_is_unloaded(pi):
    assert not pi.exists(FLAG)
    assert product.is_active(pi, TIMER) == "inactive" and product.is_enabled(pi, TIMER) == "enabled"
    since = pi.now()
    chat(pi)
    assert product.wait_for(lambda: loads_since(pi, since) == 1, 10), \
        product.journal_text(pi, since=since, unit=product.UNIT)  # a cold start: the model was loaded
    assert [m["name"] for m in loaded(pi)] == [MODEL]
    assert product.wait_for(lambda: loaded(pi) == [], KEEP_ALIVE + 10, interval=0.5), loaded(pi)


def test_on_the_timer_keeps_the_model_loaded_through_idle_spells(pi):
    set_keep_loaded(pi, True)
    assert product.wait_for(lambda: product.is_active(pi, TIMER) == "active", 20)
    # the timer's own first run (20 s after it starts) loads the model for good
    assert product.wait_for(lambda: [m["name"] for m in loaded(pi)] == [MODEL], 60, interval=1), \
        pi.journal(unit=SERVICE, lines=20)
    assert never_expires(loaded(pi)[0]), loaded(pi)
    line = f"keep-warm: {MODEL} is loaded and kept loaded (keep_alive -1)"
    assert product.wait_for(lambda: line in product.journal_text(pi, unit=SERVICE), 30), \
        product.journal_text(pi, unit=SERVICE)
    time.sleep(3 * KEEP_ALIVE)  # several default keep-alive periods of silence
    assert [m["name"] for m in loaded(pi)] == [MODEL]
    since = pi.now()
    chat(pi)
    time.sleep(1)  # the journal catches up
    assert loads_since(pi, since) == 0, product.journal_text(pi, since=since, unit=product.UNIT)  # no load


def test_the_timer_is_active_again_after_a_reboot_while_the_setting_is_on(pi):
    pi.reboot()
    assert product.wait_answering(pi, timeout=90), pi.diagnostics()
    assert product.is_active(pi, TIMER) == "active"


def test_turning_it_off_stops_the_timer(pi):
    set_keep_loaded(pi, False)
    assert product.wait_for(lambda: product.is_active(pi, TIMER) == "inactive", 20)
    r = pi.systemctl("start", SERVICE)  # also a stray run does nothing without the flag
    assert r.rc == 0 and pi.unit_property(SERVICE, "ConditionResult") == "no"
