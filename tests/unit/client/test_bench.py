"""Tests of client/bench.py against the stand-in server with a fake device."""

from __future__ import annotations

import io
import time

import pytest

from hailo_ollama_service.client import api, pull
from hailo_ollama_service.client import bench as benchmark

from hostile import drip, ndjson, reply


def pulled(server, model="qwen2:1.5b"):
    pull.pull(server.values(), model, pull.Progress(io.StringIO(), False), reachable=lambda h, p: None)


def test_bench_prints_medians_of_first_token_tokens_per_second_and_temperatures(standin_with_device):
    pulled(standin_with_device)
    lines = []
    temps = iter([45.0, 51.5])
    code = benchmark.bench(standin_with_device.values(), "", 2, lambda: next(temps), lines.append)
    assert code == 0
    assert lines[0].startswith("run 1/2: first token ")
    assert "model:               qwen2:1.5b" in lines
    assert any(line.startswith("first token, cold:   ") for line in lines)
    assert any(line.startswith("first token, warm:   ") and "(median of 1)" in line for line in lines)
    assert any(line.startswith("tokens/s, median:") for line in lines)
    assert lines[-1] == "SoC temperature:     45.0 °C before, 51.5 °C after"


def test_bench_without_a_pulled_model_says_how_to_pull_one(standin):
    with pytest.raises(benchmark.BenchError, match="hailo-ollama-service pull"):
        benchmark.bench(standin.values(), "", 1, lambda: None, lambda _l: None)


def test_bench_without_a_device_reports_the_servers_error(standin):
    pulled(standin)
    with pytest.raises(benchmark.BenchError, match="HTTP 500"):
        benchmark.bench(standin.values(), "qwen2:1.5b", 1, lambda: None, lambda _l: None)


def test_tokens_per_second_come_from_eval_count_when_the_server_gives_it(standin_with_device):
    pulled(standin_with_device)
    run = benchmark.one_run("127.0.0.1", standin_with_device.port, "qwen2:1.5b")
    assert run.first_token >= 0 and run.tokens_per_second > 0
    assert run.from_server


def test_bench_of_a_model_not_pulled_says_to_pull_it(standin_with_device):
    with pytest.raises(benchmark.BenchError, match="pull it first: hailo-ollama-service pull qwen2:1.5b"):
        benchmark.bench(standin_with_device.values(), "qwen2:1.5b", 1, lambda: None, lambda _l: None)


def test_the_first_run_is_cold_because_the_model_is_unloaded_first(standin_with_device):
    pulled(standin_with_device)
    port = standin_with_device.port
    api.post_json("127.0.0.1", port, "/api/generate", {"model": "qwen2:1.5b", "keep_alive": -1}, 10)
    assert api.get_json("127.0.0.1", port, "/api/ps", 5)[1]["models"]
    benchmark.unload("127.0.0.1", port, "qwen2:1.5b")
    assert api.get_json("127.0.0.1", port, "/api/ps", 5) == (200, {"models": []})


def test_a_generation_that_drips_ends_at_the_run_deadline_in_one_line(hostile):
    events = b"".join(b'{"response":"x"}\n' for _ in range(1000))
    server = hostile({"POST /api/generate": drip(b"HTTP/1.1 200 OK\r\n\r\n" + events, 0.02)})
    start = time.monotonic()
    with pytest.raises(benchmark.BenchError) as caught:
        benchmark.one_run("127.0.0.1", server.port, "qwen2:1.5b", timeout=0.4, idle=0.2)
    assert time.monotonic() - start < 1.2
    assert str(caught.value) == f"http://127.0.0.1:{server.port}/api/generate: no complete answer within 0.4 s"


def test_the_servers_error_and_model_names_are_escaped_before_they_are_printed(hostile):
    evil = "qwen2:1.5b\x1b]0;owned\x07"
    server = hostile({"/api/tags": reply(200, {"models": [{"name": evil}]}),
                      "POST /api/generate": ndjson([{"error": "model not found\x1b[2J"}])})
    with pytest.raises(benchmark.BenchError) as caught:
        benchmark.bench({"server.host": "127.0.0.1", "server.port": server.port, "warmup.model": ""}, "", 1,
                        lambda: None, lambda _line: None)
    message = str(caught.value)
    assert "\x1b" not in message
    assert message == ("generate failed: model not found\\x1b[2J; pull it first: hailo-ollama-service pull "
                       "qwen2:1.5b\\x1b]0;owned\\x07")


def test_absurd_counts_from_the_server_do_not_break_the_figures(hostile):
    server = hostile({"POST /api/generate": ndjson([{"response": "a"}, {"response": "b"},
                                                    {"done": True, "eval_count": 10 ** 400, "eval_duration": 1}])})
    run = benchmark.one_run("127.0.0.1", server.port, "m")
    assert run.tokens_per_second >= 0 and not run.from_server


def test_bench_of_a_name_from_another_hailo_release_says_did_you_mean_and_unloads_nothing(hostile):
    from hailo_ollama_service.config.schema import DEFAULTS
    names = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]
    server = hostile({"/hailo/v1/list": reply(200, {"models": names})})
    values = dict(DEFAULTS, **{"server.host": "127.0.0.1", "server.port": server.port})
    with pytest.raises(benchmark.BenchError) as caught:
        benchmark.bench(values, "qwen2.5-instruct:1.5b", 1, lambda: None, lambda _l: None)
    assert str(caught.value) == ("qwen2.5-instruct:1.5b: not offered by this server; did you mean qwen2.5:1.5b? "
                                 "(Hailo 5.2 renamed it)")
    assert [(method, path) for method, path, _h, _b in server.requests] == [("GET", "/hailo/v1/list")]


def test_bench_of_warmup_model_named_for_another_release_gives_the_same_hint(standin):
    values = dict(standin.values(), **{"warmup.model": "deepseek_r1:1.5b"})
    with pytest.raises(benchmark.BenchError, match=r"^deepseek_r1:1\.5b: not offered by this server; did you mean "
                       r"deepseek_r1_distill_qwen:1\.5b\? \(its name before Hailo 5\.2\)$"):
        benchmark.bench(values, "", 1, lambda: None, lambda _l: None)
