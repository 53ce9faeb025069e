"""Tests of config/access.py: HAProxy's configuration of the access front (checked by the host's
``haproxy -c``), the routes each role may use, the networks and the key map."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hailo_ollama_service.config import access
from hailo_ollama_service.config.schema import DEFAULTS

from unit_helpers import HAPROXY, write


def values(**changed) -> dict:
    """The defaults with access on and the given settings (``server__host`` is server.host)."""
    return dict(DEFAULTS, **{"access.enabled": True}, **{k.replace("__", "."): v for k, v in changed.items()})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> bytes:
    """A self-signed certificate and its key, as one PEM (what root.front writes as tls.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=t", "-days", "2",
                    "-keyout", str(where / "k"), "-out", str(where / "c")], check=True, capture_output=True)
    return (where / "c").read_bytes() + (where / "k").read_bytes()


def haproxy_check(base: Path, settings: dict, pem: bytes | None) -> subprocess.CompletedProcess:
    """Write the front's files into ``base`` as root.front does, and run ``haproxy -c`` on them."""
    if not Path(HAPROXY).is_file():
        pytest.skip(f"{HAPROXY} is not installed (package haproxy)")
    write(base / "haproxy.cfg", access.front_config(settings, str(base), pem is not None))
    write(base / "keys.map", access.keys_map([("a" * 64, "user"), ("b" * 64, "admin")]))
    if pem is not None:
        write(base / "tls.pem", pem)
    return subprocess.run([HAPROXY, "-c", "-f", str(base / "haproxy.cfg")], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("host, networks, tls", [
    ("0.0.0.0", "", False), ("0.0.0.0", "192.168.1.0/24, 10.0.0.5", False), ("::", "fd00::/8", True),
    ("::1", "", False), ("localhost", "192.168.1.7/24", True), ("127.0.0.1", "", True)])
def test_haproxy_accepts_the_generated_configuration(tmp_path, certificate, host, networks, tls):
    settings = values(server__host=host, access__networks=networks)
    done = haproxy_check(tmp_path, settings, certificate if tls else None)
    assert done.returncode == 0, done.stdout + done.stderr


def test_haproxy_would_refuse_a_configuration_that_names_a_missing_certificate(tmp_path):
    # the check above can fail: without tls.pem the same text is refused
    if not Path(HAPROXY).is_file():
        pytest.skip(f"{HAPROXY} is not installed (package haproxy)")
    write(tmp_path / "haproxy.cfg", access.front_config(values(), str(tmp_path), True))
    write(tmp_path / "keys.map", access.keys_map([]))
    done = subprocess.run([HAPROXY, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert done.returncode != 0 and "tls.pem" in done.stdout + done.stderr


def line_of(config: bytes, start: str) -> str:
    return next(line.strip() for line in config.decode().splitlines() if line.strip().startswith(start))


@pytest.mark.parametrize("host, bind", [("0.0.0.0", "bind 0.0.0.0:11500"), ("::", "bind ipv6@:::11500"),
                                        ("fd00::7", "bind ipv6@fd00::7:11500"),
                                        ("pi5.local", "bind pi5.local:11500")])
def test_the_front_binds_the_public_address_and_the_server_sits_on_loopback(host, bind):
    config = access.front_config(values(server__host=host, server__port=11500), "/base", False)
    assert line_of(config, "bind ") == bind
    servers = [line.strip() for line in config.decode().splitlines() if line.strip().startswith("server ")]
    assert servers == ["server hailo-ollama 127.0.0.1:11435 maxconn 1", "server hailo-ollama 127.0.0.1:11435 maxconn 8"]


def test_with_tls_the_bind_line_offers_the_certificate_in_the_base_directory():
    config = access.front_config(values(), "/var/lib/x/access", True)
    assert line_of(config, "bind ") == "bind 0.0.0.0:11434 ssl crt /var/lib/x/access/tls.pem alpn http/1.1"
    assert b"map(/var/lib/x/access/keys.map)" in config


def test_the_networks_line_is_there_only_when_networks_are_given():
    assert b"tcp-request connection reject" not in access.front_config(values(), "/b", False)
    config = access.front_config(values(access__networks="192.168.1.7/24,fd00::/8"), "/b", False)
    assert line_of(config, "tcp-request") == ("tcp-request connection reject unless "
                                              "{ src 192.168.1.0/24 fd00::/8 127.0.0.0/8 ::1/128 }")


def test_networks_add_loopback_only_when_a_list_is_given_and_never_twice():
    assert access.networks(values()) == []
    assert access.networks(values(access__networks=" 10.0.0.5 ")) == ["10.0.0.5/32", "127.0.0.0/8", "::1/128"]
    assert access.networks(values(access__networks="::1, 127.0.0.0/8")) == ["::1/128", "127.0.0.0/8"]


def test_the_server_never_sees_the_key_and_the_bodies_are_json_with_an_error():
    config = access.front_config(values(), "/b", False).decode()
    assert "http-request del-header Authorization" in config
    assert config.index("del-header Authorization") > config.index("set-var(txn.role)")
    for body in (access.UNAUTHORIZED, access.FORBIDDEN):
        assert isinstance(json.loads(body)["error"], str)
        assert f"string '{body}'" in config and "'" not in body
    assert "status 401" in config and "status 403" in config


def user(path: str) -> bool:
    return any(re.search(p, path) for p in access.USER_PATHS)


def public(path: str) -> bool:
    return re.search(access.PUBLIC_PATH, path) is not None


@pytest.mark.parametrize("path", ["/api/version", "//api//version/"])
def test_the_version_is_public(path):
    assert public(path) and not user(path)


@pytest.mark.parametrize("path", ["/api/chat", "//api//chat/", "/api/generate", "/api/tags", "/api/show",
                                  "/api/ps", "/api/embed", "/api/embeddings", "/v1/chat/completions",
                                  "/v1/completions", "/v1/models", "/v1/models/qwen2:1.5b", "/v1/embeddings", "/"])
def test_the_routes_of_a_user_key(path):
    assert user(path) and not public(path)


@pytest.mark.parametrize("path", ["/api/pull", "/api/delete", "/api/create", "/api/copy", "/api/push",
                                  "/api/%70ull", "/API/chat", "/api/chat/../pull", "/api/./chat", "/v1/models/..",
                                  "/v1/models/../../api/pull", "/api/blobs/sha256:x", "/unknown", "/api/version2",
                                  "/hailo/v1/list", "/api/chatx"])
def test_every_other_path_needs_an_admin_key(path):
    assert not user(path) and not public(path)


@pytest.mark.parametrize("path, queued", [
    ("/api/chat", True), ("//api/generate/", True), ("/v1/chat/completions", True), ("/v1/completions", True),
    ("/api/tags", False), ("/api/embed", False), ("/v1/models", False), ("/api/pull", False),
    ("/api/version", False), ("/api/chat/x", False)])
def test_only_generations_wait_in_the_one_at_a_time_queue(path, queued):
    assert (re.search(access.GENERATION_PATH, path) is not None) is queued


def test_the_key_map_holds_one_sorted_digest_and_role_a_line_and_no_names():
    text = access.keys_map([("b" * 64, "user"), ("a" * 64, "admin")]).decode()
    lines = text.splitlines()
    assert lines[0].startswith("# ") and text.endswith("\n")
    assert lines[1:] == [f"{'a' * 64} admin", f"{'b' * 64} user"]
    assert access.keys_map([]).decode().splitlines() == [lines[0]]
