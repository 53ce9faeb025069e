"""The warm-up model (issues 3 and 5): set by debconf, pulled and loaded in
the background by hailo-ollama-warmup.service, logged to the journal, and
again after a reboot; never failing the configuration."""

import time

import pytest

import product

pytestmark = pytest.mark.system

WARMUP_UNIT = "hailo-ollama-warmup.service"


def warmup_log(c, since=None) -> str:
    return product.journal_text(c, unit=WARMUP_UNIT, since=since)


def test_a_warmup_model_is_pulled_and_loaded_in_the_background_and_again_after_a_reboot(installed_system):
    c = installed_system
    model = "qwen2:1.5b"
    c.add_device("/dev/hailo0")
    c.exec(["sh", "-c", f"rm -f {product.BLOB}/sha256_*"])
    since = c.now()
    try:
        product.preseed(c, "warmup-model", model)
        start = time.monotonic()
        done = product.reconfigure(c)
        assert done.rc == 0, done.output
        assert time.monotonic() - start < 60, "dpkg-reconfigure waited for the warm-up"
        assert product.wait_for(lambda: f"warmup: {model} is loaded" in warmup_log(c, since), 120), \
            warmup_log(c, since)
        assert f"warmup: pulled {model}" in warmup_log(c, since)
        assert model in product.tag_names(c)
        status, body = product.api(c, "GET", "/api/ps")
        assert status == 200 and [m["name"] for m in body["models"]] == [model]

        since = c.now()
        c.reboot()
        # the warm-up runs at boot too (here without a device: /dev is fresh)
        assert product.wait_for(lambda: f"warmup: {model} is already present" in warmup_log(c, since), 120), \
            warmup_log(c, since)
    finally:
        product.preseed(c, "warmup-model", "")
        product.reconfigure(c)


def test_without_a_device_the_warmup_logs_the_failure_and_the_server_survives(installed_system):
    c = installed_system
    model = "qwen2:1.5b"
    product.ensure_pulled(c, model)
    product.unload(c, model)  # an earlier test may have left it loaded (with a device)
    pid = product.main_pid(c)
    since = c.now()
    try:
        product.preseed(c, "warmup-model", model)
        assert product.reconfigure(c).rc == 0
        assert product.wait_for(lambda: f"warmup: loading {model} failed: HTTP 500" in warmup_log(c, since),
                                120), warmup_log(c, since)
        assert product.wait_for(lambda: product.is_active(c, WARMUP_UNIT) == "inactive", 60)
        # upstream crashes on a second request for a model whose load failed,
        # unless it was unloaded: the warm-up unloads it
        status, _body = product.api(c, "POST", "/api/chat", body={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "Hi"}]})
        assert status == 500
        assert product.main_pid(c) == pid and product.answers(c)
        assert c.unit_property(WARMUP_UNIT, "Result") == "success"
    finally:
        product.preseed(c, "warmup-model", "")
        product.reconfigure(c)
