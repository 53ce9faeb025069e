"""Life cycle 9: upstream in 5.3 mode takes the port from the rendered env file."""

import pytest

import product

pytestmark = pytest.mark.system


def test_in_53_mode_the_server_listens_on_the_configured_port_through_the_env_file(
        installed_system, shipped_conffile, model):
    c = installed_system
    port = 11507
    product.write_conffile(c, product.port_config(port, shipped_conffile), how="cp")
    assert product.wait_answering(c, port, timeout=30)
    try:
        product.standin_mode(c, "5.3")
        r = c.systemctl("restart", product.UNIT, timeout=120)
        assert r.rc == 0, r.output
        assert product.wait_answering(c, port, timeout=30), "5.3 server not answering on the port"
        env = c.read_file(product.ENV_FILE)
        assert f"OLLAMA_HOST=0.0.0.0:{port}" in env.replace('"', ""), env
        pid = product.main_pid(c)
        environ = c.exec(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
        assert f"OLLAMA_HOST=0.0.0.0:{port}" in environ, environ
        assert product.listed_models(c, port=port) == product.shipped_models(c)
        # the device of the 5.3 driver
        product.ensure_pulled(c, model, port=port)
        c.add_device("/dev/h1x-0")
        status, body = product.api(c, "POST", "/api/chat", port=port, body={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200, body
    finally:
        product.unload(c, model, port=port)
        c.remove_device("/dev/h1x-0")
        product.standin_mode(c, None)
        c.systemctl("restart", product.UNIT, timeout=120)
