"""Tests of client/pull.py against the stand-in server and stand-in libraries on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time

import pytest

from hailo_ollama_service.client import pull
from hailo_ollama_service.client.pull import Progress, PullError
from hailo_ollama_service.config.schema import DEFAULTS


def reachable(_host, _port):
    return None


def test_a_pull_lands_the_blob_and_prints_plain_progress_lines_off_a_terminal(standin):
    out = io.StringIO()
    pull.pull(standin.values(), "qwen2:1.5b", Progress(out, tty=False), reachable=reachable)
    lines = out.getvalue().splitlines()
    # upstream writes a progress line per 1000 writes: none for the last partial step
    percents = [float(line.split(": ", 1)[1].split("%")[0]) for line in lines if line.startswith("pulling ")]
    assert percents and percents == sorted(percents) and 0 < percents[-1] <= 100, lines
    assert "\r" not in out.getvalue()
    assert lines[-1] == "success"
    assert "verifying sha256 digest" in lines
    assert len([p for p in (standin.data / "blob").iterdir() if not p.name.endswith(".tmp")]) == 1
    assert len([line for line in lines if line.startswith("pulling ")]) <= 11  # a line per 10 %


def test_an_unknown_model_is_refused_with_the_names_available(standin):
    with pytest.raises(PullError, match="^nosuch:1b: not offered by this server; it offers: .*qwen2:1.5b"):
        pull.pull(standin.values(), "nosuch:1b", Progress(io.StringIO(), False), reachable=reachable)


def test_a_5_4_name_on_a_5_1_server_gets_did_you_mean_its_5_1_name_and_pulls_nothing(standin):
    with pytest.raises(PullError) as caught:
        pull.pull(standin.values(), "qwen2.5:1.5b", Progress(io.StringIO(), False), reachable=reachable)
    assert str(caught.value) == ("qwen2.5:1.5b: not offered by this server; did you mean qwen2.5-instruct:1.5b? "
                                 "(its name before Hailo 5.2)")
    assert not (standin.data / "blob").exists() or not any((standin.data / "blob").iterdir())


def test_a_5_1_name_on_a_5_4_server_gets_did_you_mean_its_new_name_before_any_pull(hostile_api):
    names = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]
    from hostile import reply
    values = hostile_api({"/hailo/v1/list": reply(200, {"models": names})})
    for model, line in (("deepseek_r1_distill_qwen:1.5b", "did you mean deepseek_r1:1.5b? (Hailo 5.2 renamed it)"),
                        ("llama3.2:3b", "(Hailo 5.2 dropped it); it offers: llama3.2:1b, ")):
        with pytest.raises(PullError) as caught:
            pull.pull(values, model, Progress(io.StringIO(), False), reachable=reachable)
        assert str(caught.value).startswith(f"{model}: not offered by this server")
        assert line in str(caught.value)
    assert [path for _method, path, _h, _b in hostile_api.servers[-1].requests] == ["/hailo/v1/list"] * 2


def test_an_api_that_is_down_is_reported_with_what_to_check(standin):
    values = standin.values()
    standin.stop()
    with pytest.raises(PullError, match="does not answer; check: systemctl status"):
        pull.pull(values, "qwen2:1.5b", Progress(io.StringIO(), False), reachable=reachable)


def test_an_unreachable_library_is_reported_without_asking_the_server(standin):
    (standin.control / "library-unreachable").write_text("")
    with pytest.raises(PullError, match="model library is unreachable"):
        pull.pull(standin.values(), "qwen2:1.5b", Progress(io.StringIO(), False),
                  reachable=lambda h, p: f"cannot resolve {h}: Name or service not known")
    assert standin.alive()  # upstream 5.1 would have died on a streaming pull


def test_a_model_already_present_is_verified_by_the_server_without_the_library(standin):
    pull.pull(standin.values(), "qwen2:1.5b", Progress(io.StringIO(), False), reachable=reachable)
    out = io.StringIO()
    pull.pull(standin.values(), "qwen2:1.5b", Progress(out, tty=False),
              reachable=lambda h, p: f"cannot resolve {h}: Name or service not known")
    assert out.getvalue().splitlines()[-2:] == ["verifying sha256 digest", "success"]


def test_a_present_blob_that_fails_verification_without_a_library_is_reported(standin):
    pull.pull(standin.values(), "qwen2:1.5b", Progress(io.StringIO(), False), reachable=reachable)
    blob = next(p for p in (standin.data / "blob").iterdir() if not p.name.endswith(".tmp"))
    blob.write_bytes(b"tampered")
    (standin.control / "library-unreachable").write_text("")
    with pytest.raises(PullError, match="could not verify the present blob"):
        pull.pull(standin.values(), "qwen2:1.5b", Progress(io.StringIO(), False),
                  reachable=lambda h, p: f"cannot resolve {h}: Name or service not known")


def test_the_terminal_bar_redraws_one_line_with_rate_and_eta():
    ticks = iter([0.0, 2.0])
    out = io.StringIO()
    bar = Progress(out, tty=True, clock=lambda: next(ticks))
    bar.update({"status": "pulling", "digest": "sha256_abcdef", "total": 4 * 1024 ** 2,
                "completed": 1024 ** 2})
    text = out.getvalue()
    assert text.startswith("\r[") and " 25.0% 1.0 MiB/4.0 MiB 512.0 KiB/s ETA 0:06" in text
    assert "\n" not in text


def test_an_interrupted_pull_closes_its_connection_at_once():
    # Upstream 5.1.1 aborts when the client of a streaming pull goes (seen on
    # the real build); systemd restarts it. The client must not linger either.
    from hostile import NDJSON_HEAD, Hostile, chunk, reply
    closed = threading.Event()

    def stream(conn):
        conn.send(NDJSON_HEAD + chunk(b'{"status":"pulling","digest":"d","total":10,"completed":1}\r\n'))
        if conn.gone(3):
            closed.set()
    server = Hostile({"/hailo/v1/list": reply(200, {"models": ["m:1"]}), "/api/tags": reply(200, {"models": []}),
                      "POST /api/pull": stream})

    class Stop(Progress):
        def update(self, event):
            if event.get("status") == "pulling":
                raise KeyboardInterrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            pull.pull(dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": server.port}), "m:1",
                      Stop(io.StringIO(), False), reachable=reachable)
        assert closed.wait(1)
    finally:
        server.close()


# ---------------------------------------------------------------- a hostile server
@pytest.fixture
def hostile_api():
    """A Hostile server that lists model m:1 (not pulled) and answers /api/version; ``routes``
    add or replace answers. Closed after the test."""
    from hostile import Hostile, reply
    started = []

    def start(routes):
        base = {"/hailo/v1/list": reply(200, {"models": ["m:1"]}), "/api/tags": reply(200, {"models": []}),
                "/api/version": reply(200, {"version": "0.5.1"})}
        started.append(Hostile({**base, **routes}))
        return dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": started[-1].port})
    start.servers = started  # type: ignore[attr-defined]
    yield start
    for server in started:
        server.close()


def test_a_pull_stream_that_goes_silent_ends_at_the_idle_timeout(hostile_api, monkeypatch):
    from hostile import ndjson, silence
    monkeypatch.setattr(pull, "PULL_IDLE", 0.2)
    values = hostile_api({"POST /api/pull": ndjson([{"status": "pulling", "digest": "d", "total": 10,
                                                     "completed": 1}], end=False, then=silence)})
    start = time.monotonic()
    with pytest.raises(PullError) as caught:
        pull.pull(values, "m:1", Progress(io.StringIO(), False), reachable=reachable)
    assert time.monotonic() - start < 2
    assert str(caught.value) == (f"the connection to http://127.0.0.1:{values['server.port']} broke during the "
                                 "pull (no data for 0.2 s); journalctl -u hailo-ollama.service -n 50")


def test_a_pull_stream_that_never_ends_stops_at_the_pull_deadline(hostile_api, monkeypatch):
    from hostile import ndjson
    monkeypatch.setattr(pull, "PULL_TIMEOUT", 0.5)
    events = ({"status": "pulling", "digest": "d", "total": 10 ** 6, "completed": n} for n in range(10 ** 6))
    values = hostile_api({"POST /api/pull": ndjson(events, pause=0.02)})
    start = time.monotonic()
    with pytest.raises(PullError, match=r"broke during the pull \(no complete answer within 0.5 s\)"):
        pull.pull(values, "m:1", Progress(io.StringIO(), False), reachable=reachable)
    assert time.monotonic() - start < 2


def test_a_model_list_that_drips_is_a_server_that_does_not_answer(hostile_api):
    from hostile import drip, reply
    values = hostile_api({"/hailo/v1/list": drip(reply(200, {"models": ["m:1"]}), 0.05)})
    start = time.monotonic()
    with pytest.raises(PullError) as caught:
        pull.pull(values, "m:1", Progress(io.StringIO(), False), reachable=reachable, connect_timeout=0.3)
    assert str(caught.value) == (f"the API at http://127.0.0.1:{values['server.port']} does not answer properly "
                                 "(no complete answer within 0.3 s); check: systemctl status hailo-ollama.service")
    assert time.monotonic() - start < 1.5


def test_the_servers_status_lines_and_errors_are_escaped(hostile_api):
    from hostile import ndjson
    values = hostile_api({"POST /api/pull": ndjson([
        {"status": "pulling", "digest": "\x1b[2Jsha256_0", "total": 4, "completed": 1},
        {"status": "pulling", "digest": "d", "total": 4, "completed": 10 ** 400},
        {"status": "verifying \x1b]0;owned\x07"}, [1, 2], "text",
        {"error": "bad hash\x1b[31m\u202e"}])})
    out = io.StringIO()
    with pytest.raises(PullError) as caught:
        pull.pull(values, "m:1", Progress(out, tty=False), reachable=reachable)
    assert "\x1b" not in out.getvalue() and "\x1b" not in str(caught.value)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("pulling \\x1b[2Jsha256_0:  25.0% ")
    assert lines[2:] == ["pulling", "verifying \\x1b]0;owned\\x07"]
    assert str(caught.value).endswith("failed: bad hash\\x1b[31m\\u202e")


def test_model_names_from_the_server_are_escaped_and_their_list_bounded(hostile_api):
    from hostile import reply
    names = [f"evil{n}\x1b[2J:1" for n in range(100)]
    values = hostile_api({"/hailo/v1/list": reply(200, {"models": names})})
    with pytest.raises(PullError) as caught:
        pull.pull(values, "qwen9\x1b:1b", Progress(io.StringIO(), False), reachable=reachable)
    message = str(caught.value)
    assert "\x1b" not in message
    assert message.startswith("qwen9\\x1b:1b: not offered by this server; it offers: evil0\\x1b[2J:1, ")
    assert message.endswith(" (and 88 more)")


# ---------------------------------------------------------------- a library on the LAN
@pytest.fixture
def standin_at(tmp_path):
    """Start a stand-in whose library is the given (host, port); stopped afterwards."""
    from unit_helpers import Standin
    started = []

    def start(library, mode="5.1", env=None):
        started.append(Standin(tmp_path / f"standin-{len(started)}", library=library, mode=mode, env=env))
        return started[-1]
    yield start
    for one in started:
        one.stop()


def blobs(standin) -> list[str]:
    blob = standin.data / "blob"
    return sorted(p.name for p in blob.iterdir()) if blob.is_dir() else []


def test_a_pull_from_a_lan_library_lands_the_blob_and_names_the_library(lan_library, standin_at):
    library = lan_library()
    server = standin_at(("localhost", library.port))
    values = dict(server.values(), **{"library.host": "localhost", "library.port": library.port})
    out = io.StringIO()
    pull.pull(values, "qwen2:1.5b", Progress(out, tty=False), version=lambda: "5.1.1")
    lines = out.getvalue().splitlines()
    assert lines[0] == f"downloading qwen2:1.5b from library localhost:{library.port}"
    assert lines[-2:] == ["verifying sha256 digest", "success"]
    digest = manifest_digest("qwen2:1.5b")
    assert blobs(server) == [f"sha256_{digest}"]
    assert hashlib.sha256((server.data / "blob" / f"sha256_{digest}").read_bytes()).hexdigest() == digest


def test_a_tampered_blob_that_stops_upstream_5_1_is_deleted_once_the_server_is_back(lan_library, standin_at):
    library = lan_library("--tamper")
    server = standin_at(("127.0.0.1", library.port))
    values = dict(server.values(), **{"library.host": "127.0.0.1", "library.port": library.port})

    def systemd():  # Restart=always: start the server again once it died
        server.proc.wait(30)
        server.stop()
        server.start()
    restarter = threading.Thread(target=systemd, daemon=True)
    restarter.start()
    with pytest.raises(PullError) as caught:
        pull.pull(values, "qwen2:1.5b", Progress(io.StringIO(), False), version=lambda: "5.1.1", restart_wait=30)
    restarter.join(30)
    message = str(caught.value)
    assert f"from library 127.0.0.1:{library.port} failed and the server restarted" in message
    assert "sha256 does not match the manifest" in message and "the server deleted the blob" in message
    assert blobs(server) == []  # neither the refused blob nor a .tmp
    assert server.alive()


def test_a_server_that_does_not_come_back_after_a_failed_pull_is_reported_in_bounded_time(lan_library, standin_at):
    library = lan_library("--tamper")
    server = standin_at(("127.0.0.1", library.port))
    values = dict(server.values(), **{"library.host": "127.0.0.1", "library.port": library.port})
    start = time.monotonic()
    with pytest.raises(PullError, match="has not answered again within 1 s"):
        pull.pull(values, "qwen2:1.5b", Progress(io.StringIO(), False), version=lambda: "5.1.1", restart_wait=1)
    assert time.monotonic() - start < 20


def test_5_3_reports_a_tampered_blob_from_its_error_line_and_leaves_nothing(lan_library, standin_at):
    library = lan_library("--tamper")
    server = standin_at(("unused", 1), mode="5.3", env={"HAILO_OLLAMA_LIBRARY_HOST": f"127.0.0.1:{library.port}"})
    values = dict(server.values(), **{"library.host": "127.0.0.1", "library.port": library.port})
    with pytest.raises(PullError, match=f"from library 127.0.0.1:{library.port} failed: "
                                        "hash verification failed for downloaded blob"):
        pull.pull(values, "qwen2:1.5b", Progress(io.StringIO(), False), version=lambda: "5.1.1")
    assert blobs(server) == [] and server.alive()


def test_a_present_blob_that_fails_its_check_against_a_tampered_library_is_deleted(lan_library, standin_at):
    library = lan_library("--tamper")
    server = standin_at(("127.0.0.1", library.port))
    digest = manifest_digest("qwen2:1.5b")
    (server.data / "blob").mkdir(exist_ok=True)
    (server.data / "blob" / f"sha256_{digest}").write_bytes(b"corrupt")
    values = dict(server.values(), **{"library.host": "127.0.0.1", "library.port": library.port})
    with pytest.raises(PullError, match="fails its sha256 check .bad hash.*the server deleted it"):
        pull.pull(values, "qwen2:1.5b", Progress(io.StringIO(), False), version=lambda: "5.1.1")
    assert blobs(server) == [] and server.alive()


def manifest_digest(name: str) -> str:
    from unit_helpers import STANDIN_MANIFESTS
    model, tag = name.split(":")
    return json.loads((STANDIN_MANIFESTS / model / tag / "manifest.json").read_text())["hef_h10h"]
