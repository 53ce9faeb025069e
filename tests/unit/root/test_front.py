"""Tests of root/front.py: the access front's files, checked by ``haproxy -c`` before they land,
the certificate read only from root's own paths, and the files written or removed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest

from hailo_ollama_service.config.load import ConfigError
from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.root import front, keys

from unit_helpers import RuntimeApi, fake_haproxy, real_haproxy, tree, write

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def on(**changed) -> dict:
    return dict(DEFAULTS, **{"access.enabled": True}, **changed)


class Recorder:
    """A ``haproxy -c`` runner: records each argv and answers ``status`` with ``said`` on stderr
    (``{file}`` in it becomes the file it was asked to check)."""

    def __init__(self, status: int = 0, said: str = "") -> None:
        self.calls: list[list[str]] = []
        self.status, self.said = status, said

    def __call__(self, argv):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, self.status, "", self.said.replace("{file}", argv[-1]))


def test_nothing_is_prepared_while_access_is_off_not_even_without_haproxy(paths):
    assert front.prepare(paths, dict(DEFAULTS), run=Recorder()) is None


def test_without_haproxy_access_is_refused_with_the_apt_command(paths):
    with pytest.raises(ConfigError, match="access.enabled: access is on, but HAProxy is not installed; "
                                          "install it: sudo apt install haproxy"):
        front.prepare(paths, on(), run=Recorder())


def test_the_prepared_files_are_checked_by_haproxy_in_a_staging_copy_that_is_then_removed(paths):
    fake_haproxy(paths)
    run = Recorder()
    files = front.prepare(paths, on(), run=run)
    [argv] = run.calls
    assert argv[:4] == [str(paths.haproxy), "-c", "-q", "-f"] and argv[4].endswith("/haproxy.cfg")
    assert os.path.dirname(argv[4]).startswith(str(paths.book_dir / ".access-check."))
    assert not os.path.exists(os.path.dirname(argv[4]))
    assert files.tls is None and files.sources == ()
    named = files.named(str(paths.access_dir))
    assert set(named) == {"haproxy.cfg", "keys.map"}
    assert f"map({paths.access_dir}/keys.map)".encode() in named["haproxy.cfg"]


def test_the_real_haproxy_accepts_the_prepared_files_with_keys_and_a_certificate(paths):
    real_haproxy(paths)
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = paths.root / "etc/ssl/pi.pem", paths.root / "etc/ssl/private/pi.key"
    key.parent.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=t", "-days", "2",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    keys.add(paths, "alice", admin=False)
    settings = on(**{"access.tls": "own", "access.tls_certificate": str(cert), "access.tls_key": str(key),
                     "access.networks": "192.168.1.0/24", "server.host": "::"})
    files = front.prepare(paths, settings)  # the default runner: the real haproxy -c
    assert files.sources == (str(cert), str(key))
    assert files.tls == cert.read_bytes() + key.read_bytes()
    assert files.keys.decode().splitlines()[1] == f"{keys.load(paths)[0].sha256} user"


def test_a_configuration_haproxy_refuses_is_one_line_with_its_alert_in_the_real_directory(paths):
    fake_haproxy(paths)
    said = ("[NOTICE]   (9) : haproxy version is 2.6\n"
            "[ALERT]    (9) : config : parsing [{file}:31] : 'bind' : invalid address\n"
            "[ALERT]    (9) : config : Fatal errors found in configuration.\n")
    with pytest.raises(ConfigError) as caught:
        front.prepare(paths, on(), run=Recorder(1, said))
    message = str(caught.value)
    assert message == (f"{paths.conffile}: access: HAProxy refuses the access front's configuration: "
                       f"[ALERT]    (9) : config : parsing [{paths.access_dir}/haproxy.cfg:31] : "
                       "'bind' : invalid address")
    assert [p.name for p in paths.book_dir.iterdir()] == []  # the staging copy is gone


def test_a_refusal_without_an_alert_line_shows_the_first_line_said(paths):
    fake_haproxy(paths)
    with pytest.raises(ConfigError, match="configuration: something odd$"):
        front.prepare(paths, on(), run=Recorder(2, "\n  \nsomething odd\nmore\n"))
    with pytest.raises(ConfigError, match="configuration: no output$"):
        front.prepare(paths, on(), run=Recorder(2, ""))


def test_haproxy_that_cannot_run_is_one_line(paths):
    fake_haproxy(paths)

    def broken(_argv):
        raise subprocess.TimeoutExpired("haproxy", 30)
    with pytest.raises(ConfigError, match="haproxy -c could not run"):
        front.prepare(paths, on(), run=broken)


def test_haproxy_checks_again_only_when_the_files_would_change(paths):
    fake_haproxy(paths)
    front.write(paths, front.prepare(paths, on(), run=Recorder()))
    again = Recorder()
    files = front.prepare(paths, on(), run=again)
    assert again.calls == [] and front.write(paths, files) == []
    keys.add(paths, "alice", admin=False)
    front.prepare(paths, on(), run=again)
    assert len(again.calls) == 1


def test_an_unusable_key_store_is_refused_in_one_line(paths):
    fake_haproxy(paths)
    write(paths.keys_file, "{").chmod(0o600)
    with pytest.raises(ConfigError, match=f"^{paths.keys_file}: not a key store written by hailo-ollama-service$"):
        front.prepare(paths, on(), run=Recorder())


def test_snakeoil_without_ssl_cert_names_the_package(paths):
    fake_haproxy(paths)
    with pytest.raises(ConfigError, match="access.tls: snakeoil needs .*sudo apt install ssl-cert"):
        front.prepare(paths, on(**{"access.tls": "snakeoil"}), run=Recorder())


def test_snakeoil_uses_ssl_certs_files_under_the_root(paths):
    fake_haproxy(paths)
    cert = write(paths.root / "etc/ssl/certs/ssl-cert-snakeoil.pem", PEM)
    key = write(paths.root / "etc/ssl/private/ssl-cert-snakeoil.key", b"-----BEGIN PRIVATE KEY-----\nx\n")
    files = front.prepare(paths, on(**{"access.tls": "snakeoil"}), run=Recorder())
    assert files.sources == (str(cert), str(key)) and files.tls == PEM + key.read_bytes()
    assert b" ssl crt " in files.config


# ---------------------------------------------------------------- trusted_read
def test_a_pem_in_root_owned_directories_is_read(tmp_path):
    path = write(tmp_path / "certs/pi.pem", PEM)
    assert front.trusted_read(path, "access.tls_certificate") == PEM


def test_a_certbot_like_link_into_root_owned_directories_is_followed(tmp_path):
    write(tmp_path / "letsencrypt/archive/pi/fullchain1.pem", PEM)
    live = tmp_path / "letsencrypt/live/pi"
    live.mkdir(parents=True)
    (live / "fullchain.pem").symlink_to("../../archive/pi/fullchain1.pem")
    assert front.trusted_read(live / "fullchain.pem", "access.tls_certificate") == PEM


def test_a_pem_in_a_group_writable_directory_is_refused_naming_the_setting(tmp_path):
    path = write(tmp_path / "certs/pi.pem", PEM)
    path.parent.chmod(0o775)
    with pytest.raises(ConfigError, match=re.escape(f"access.tls_key: {path.parent} is owned by uid 0 or writable")):
        front.trusted_read(path, "access.tls_key")


def test_a_link_whose_target_lies_in_a_writable_directory_is_refused(tmp_path):
    target = write(tmp_path / "open/pi.pem", PEM)
    target.parent.chmod(0o777)
    (tmp_path / "pi.pem").symlink_to(target)
    with pytest.raises(ConfigError, match="writable by others"):
        front.trusted_read(tmp_path / "pi.pem", "access.tls_certificate")


def test_a_pem_in_a_sticky_directory_like_tmp_is_read(tmp_path):
    path = write(tmp_path / "sticky/pi.pem", PEM)
    path.parent.chmod(0o1777)
    assert front.trusted_read(path, "access.tls_certificate") == PEM


def test_a_group_writable_pem_is_refused(tmp_path):
    path = write(tmp_path / "pi.pem", PEM)
    path.chmod(0o664)
    with pytest.raises(ConfigError, match="writable by others"):
        front.trusted_read(path, "access.tls_certificate")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")
def test_a_pem_owned_by_another_user_is_refused(tmp_path):
    path = write(tmp_path / "pi.pem", PEM)
    os.chown(path, 1000, 1000)
    with pytest.raises(ConfigError, match=f"{path} is owned by uid 1000"):
        front.trusted_read(path, "access.tls_certificate")


def test_a_file_without_a_begin_line_is_refused_as_not_pem(tmp_path):
    path = write(tmp_path / "pi.pem", "just text\n")
    with pytest.raises(ConfigError, match="access.tls_certificate: not a PEM file"):
        front.trusted_read(path, "access.tls_certificate")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pi.pem"
    os.mkfifo(path, 0o644)
    with pytest.raises(ConfigError, match="not a regular file of at most 1 MiB"):
        front.trusted_read(path, "access.tls_certificate")


def test_a_file_over_one_mebibyte_is_refused(tmp_path):
    path = write(tmp_path / "pi.pem", PEM + b"#" * front.PEM_LIMIT)
    with pytest.raises(ConfigError, match="at most 1 MiB"):
        front.trusted_read(path, "access.tls_certificate")


def test_a_missing_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=f"^{tmp_path}/gone.pem: access.tls_key: cannot read: No such file"):
        front.trusted_read(tmp_path / "gone.pem", "access.tls_key")


# ---------------------------------------------------------------- write
def test_the_files_are_written_0640_in_a_0750_directory_and_removed_with_it_when_off(paths):
    fake_haproxy(paths)
    write(paths.root / "etc/ssl/certs/ssl-cert-snakeoil.pem", PEM)
    write(paths.root / "etc/ssl/private/ssl-cert-snakeoil.key", PEM)
    changed = front.write(paths, front.prepare(paths, on(**{"access.tls": "snakeoil"}), run=Recorder()))
    names = ["tls.pem", "keys.map", "haproxy.cfg"]
    assert changed == [str(paths.access_dir / n) for n in names]
    assert stat.S_IMODE(paths.access_dir.stat().st_mode) == 0o750
    for name in names:
        assert stat.S_IMODE((paths.access_dir / name).stat().st_mode) == 0o640
    assert b"@BASE@" not in (paths.access_dir / "haproxy.cfg").read_bytes()
    assert sorted(front.write(paths, None)) == sorted(str(paths.access_dir / n) for n in names)
    assert not paths.access_dir.exists()
    assert front.write(paths, None) == []


def test_turning_tls_off_removes_the_certificate(paths):
    fake_haproxy(paths)
    write(paths.root / "etc/ssl/certs/ssl-cert-snakeoil.pem", PEM)
    write(paths.root / "etc/ssl/private/ssl-cert-snakeoil.key", PEM)
    front.write(paths, front.prepare(paths, on(**{"access.tls": "snakeoil"}), run=Recorder()))
    changed = front.write(paths, front.prepare(paths, on(), run=Recorder()))
    assert str(paths.access_dir / "tls.pem") in changed and not (paths.access_dir / "tls.pem").exists()
    assert b" ssl " not in paths.front_config.read_bytes()


def test_off_leaves_a_directory_with_foreign_files_in_place(paths):
    write(paths.access_dir / "notes.txt", "mine\n")
    write(paths.front_config, "old\n")
    assert front.write(paths, None) == [str(paths.front_config)]
    assert tree(paths.access_dir) == {"notes.txt": b"mine\n"}


def test_read_map_gives_digest_and_role_and_ignores_comments(paths):
    assert front.read_map(paths) == {}
    write(paths.access_dir / "keys.map", f"# header\n{'a' * 64} user\n{'b' * 64} admin\nodd line here x\n")
    assert front.read_map(paths) == {"a" * 64: "user", "b" * 64: "admin"}


# ---------------------------------------------------------------- push_keys: HAProxy's runtime API
def test_changed_keys_go_to_the_running_front_as_del_set_and_add_commands(paths):
    api = RuntimeApi(paths)
    try:
        a, b, c = "a" * 64, "b" * 64, "c" * 64
        write(paths.access_dir / "keys.map", f"# map\n{b} admin\n{c} user\n")
        assert front.push_keys(paths, {a: "user", b: "user"}, timeout=2)
        where = paths.access_dir / "keys.map"
        assert api.commands == [f"del map {where} {a}", f"set map {where} {b} admin", f"add map {where} {c} user"]
    finally:
        api.close()


def test_a_front_that_answers_an_error_or_is_not_there_is_not_pushed_to(paths):
    write(paths.access_dir / "keys.map", f"{'c' * 64} user\n")
    assert not front.push_keys(paths, {}, timeout=2)
    api = RuntimeApi(paths, answer=b"Unknown map identifier.\n")
    try:
        assert not front.push_keys(paths, {}, timeout=2)
        assert len(api.commands) == 1
    finally:
        api.close()
