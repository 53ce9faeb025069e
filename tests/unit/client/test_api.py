"""Tests of client/api.py: the API's URL (the probes are in test_probe.py)."""

from __future__ import annotations

from hailo_ollama_service.client import api


def test_the_base_url_brackets_ipv6():
    assert api.base_url({"server.host": "::", "server.port": 11434}) == "http://[::1]:11434"
    assert api.base_url({"server.host": "0.0.0.0", "server.port": 1}) == "http://127.0.0.1:1"
