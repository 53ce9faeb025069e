"""Life cycle 3-4: manifests listed under systemd, pull, tags, chat, journal."""

import pytest

import product

pytestmark = pytest.mark.system


def test_list_shows_every_manifest_shipped_by_upstream_under_systemd(installed_system):
    c = installed_system
    shipped = product.shipped_models(c)
    assert shipped, "the stand-in ships no manifests?"
    assert product.listed_models(c) == shipped


def test_a_pull_lands_a_blob_in_the_state_dir_and_tags_lists_it(installed_system, model):
    c = installed_system
    c.exec(["sh", "-c", f"rm -f {product.BLOB}/*"])
    c.systemctl("restart", product.UNIT, check=True)
    assert product.wait_answering(c, timeout=60)
    assert model not in product.tag_names(c)
    # not streaming: upstream 5.1 cuts a streaming pull's end (the CLI's
    # streaming pull with progress is test_85's)
    status, body = product.pull(c, model, stream=False)
    assert (status, body) == (200, {"status": "success"}), body
    r = c.exec(["find", product.BLOB, "-type", "f", "-name", "sha256_*", "-size", "+0",
                "-printf", "%u %p\n"])
    blobs = [l for l in r.stdout.splitlines() if not l.endswith(".tmp")]
    assert blobs, f"no blob under {product.BLOB}"
    assert all(l.startswith("hailo-ollama ") for l in blobs), blobs
    assert model in product.tag_names(c)


def test_chat_answers_with_a_device_node(installed_system, model):
    c = installed_system
    product.ensure_pulled(c, model)
    c.add_device("/dev/hailo0")
    try:
        status, body = product.api(c, "POST", "/api/chat", body={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200, body
        assert body["done"] is True and body["message"]["content"], body
    finally:
        product.unload(c, model)
        c.remove_device("/dev/hailo0")


def test_chat_without_a_device_answers_500(installed_system, model):
    c = installed_system
    product.ensure_pulled(c, model)
    assert not c.exists("/dev/hailo0")
    try:
        status, body = product.api(c, "POST", "/api/chat", body={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 500, body
    finally:
        product.unload(c, model)
    assert product.answers(c), "the server died after a chat without a device"


def test_the_server_output_is_in_the_journal(installed_system):
    text = product.journal_text(installed_system, unit=product.UNIT)
    assert "Server running on port 11434" in text, text[-3000:]
