"""Tests of benchmark.py against the stand-in server with a fake device."""

from __future__ import annotations

import io

import pytest

from hailo_ollama_service import benchmark, pull


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
    run = benchmark.one_run(f"http://127.0.0.1:{standin_with_device.port}", "qwen2:1.5b")
    assert run.first_token >= 0 and run.tokens_per_second > 0
    assert run.from_server


def test_bench_of_a_model_not_pulled_says_to_pull_it(standin_with_device):
    with pytest.raises(benchmark.BenchError, match="pull it first: hailo-ollama-service pull qwen2:1.5b"):
        benchmark.bench(standin_with_device.values(), "qwen2:1.5b", 1, lambda: None, lambda _l: None)


def test_the_first_run_is_cold_because_the_model_is_unloaded_first(standin_with_device):
    import requests
    pulled(standin_with_device)
    url = f"http://127.0.0.1:{standin_with_device.port}"
    requests.post(f"{url}/api/generate", json={"model": "qwen2:1.5b", "keep_alive": -1}, timeout=10)
    assert requests.get(f"{url}/api/ps", timeout=5).json()["models"]
    benchmark.unload(url, "qwen2:1.5b")
    assert requests.get(f"{url}/api/ps", timeout=5).json() == {"models": []}
