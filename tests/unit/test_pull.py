"""Tests of pull.py against the stand-in server on loopback."""

from __future__ import annotations

import io

import pytest

from hailo_ollama_service import pull
from hailo_ollama_service.pull import Progress, PullError


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
    with pytest.raises(PullError, match="unknown model 'qwen9:1b'; available: .*qwen2:1.5b"):
        pull.pull(standin.values(), "qwen9:1b", Progress(io.StringIO(), False), reachable=reachable)


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


def test_the_library_probe_names_an_unresolvable_host():
    problem = pull.library_reachable("no-such-host.invalid", 443, timeout=2)
    assert problem and "no-such-host.invalid" in problem


def test_the_terminal_bar_redraws_one_line_with_rate_and_eta():
    ticks = iter([0.0, 2.0])
    out = io.StringIO()
    bar = Progress(out, tty=True, clock=lambda: next(ticks))
    bar.update({"status": "pulling", "digest": "sha256_abcdef", "total": 4 * 1024 ** 2,
                "completed": 1024 ** 2})
    text = out.getvalue()
    assert text.startswith("\r[") and " 25.0% 1.0 MiB/4.0 MiB 512.0 KiB/s ETA 0:06" in text
    assert "\n" not in text


def test_an_interrupted_pull_leaves_the_server_healthy(standin):
    class Stop(Progress):
        def update(self, event):
            if event.get("status") == "pulling":
                raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        pull.pull(standin.values(), "llama3.2:3b", Stop(io.StringIO(), False), reachable=reachable)
    import time
    from hailo_ollama_service import api
    time.sleep(0.5)
    assert standin.alive()
    assert api.version("127.0.0.1", standin.port) == "0.5.1"

