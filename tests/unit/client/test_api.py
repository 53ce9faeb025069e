"""Tests of client/api.py: the API's URL (the probes are in test_probe.py)."""

from __future__ import annotations

from hailo_ollama_service.client import api


def test_the_base_url_brackets_ipv6():
    assert api.base_url({"server.host": "::", "server.port": 11434}) == "http://[::1]:11434"
    assert api.base_url({"server.host": "0.0.0.0", "server.port": 1}) == "http://127.0.0.1:1"


def test_with_access_on_a_local_client_talks_to_the_server_on_loopback_behind_the_front():
    from hailo_ollama_service.config.schema import DEFAULTS
    values = dict(DEFAULTS, **{"server.host": "::", "access.enabled": True, "access.server_port": 12000})
    assert api.address(values) == ("127.0.0.1", 12000)
    assert api.base_url(values) == "http://127.0.0.1:12000"
    assert api.address(dict(values, **{"access.enabled": False})) == ("::1", 11434)
