"""The product's command line against a running stand-in of another Hailo release: a model named for 5.1
asked of a 5.4 server, and the other way round, gets one "did you mean" line and a non-zero exit.

Hailo 5.2 renamed qwen2.5-instruct:1.5b to qwen2.5:1.5b and deepseek_r1_distill_qwen:1.5b to
deepseek_r1:1.5b (the manifest folders of manifests-5.4.0), and dropped llama3.2:3b. The names come from
the stand-in's /hailo/v1/list; the table is hailo_ollama_service/config/renames.py. The command runs as
`python3 -m hailo_ollama_service` from this tree with HAILO_OLLAMA_ROOT at a scratch root whose settings
point at the stand-in (and at a closed loopback port as the model library, so nothing leaves the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from standin_helpers import MANIFESTS_54, Layout, Standin, free_port, run_54

REPO = Path(__file__).resolve().parents[2]


def cli(layout: Layout, *args: str, warmup_model: str = "") -> subprocess.CompletedProcess[str]:
    """Run the product's CLI with settings that point at the layout's stand-in; its result."""
    root = layout.tmp / "root"
    conffile = root / "etc" / "hailo" / "hailo-ollama.yaml"
    conffile.parent.mkdir(parents=True, exist_ok=True)
    conffile.write_text(f"server:\n  host: 127.0.0.1\n  port: {layout.port}\n"
                        f"library:\n  host: 127.0.0.1\n  port: {free_port()}\n"
                        f"warmup:\n  model: '{warmup_model}'\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(layout.home), "PYTHONPATH": str(REPO),
           "HAILO_OLLAMA_ROOT": str(root), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "hailo_ollama_service", *args], cwd=layout.cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def blobs(layout: Layout) -> list[str]:
    """Every file in the 5.1 and the 5.4 blob directories of the layout."""
    found = []
    for where in (layout.blob, layout.data_home / "hailo-ollama" / "models" / "blob"):
        found += [p.name for p in where.iterdir()] if where.is_dir() else []
    return found


def test_pull_of_a_5_1_name_from_a_5_4_server_says_did_you_mean_the_new_name_and_exits_1(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run_54(layout, run)
    result = cli(layout, "pull", "qwen2.5-instruct:1.5b")
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        "hailo-ollama-service: error: qwen2.5-instruct:1.5b: not offered by this server; did you mean "
        "qwen2.5:1.5b? (Hailo 5.2 renamed it)"]
    assert result.stdout == "" and blobs(layout) == [] and standin.alive()


def test_pull_of_the_dropped_llama3_2_3b_from_a_5_4_server_says_what_it_offers_instead(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    run_54(layout, run)
    result = cli(layout, "pull", "llama3.2:3b")
    assert result.returncode == 1, result
    assert "llama3.2:3b: not offered by this server (Hailo 5.2 dropped it); it offers: llama3.2:1b, " \
        in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_pull_of_a_5_4_name_from_a_5_1_server_says_did_you_mean_the_old_name_and_exits_1(
        server: Standin, layout: Layout) -> None:
    assert "qwen2.5:1.5b" not in server.get("/hailo/v1/list").json()["models"]
    result = cli(layout, "pull", "qwen2.5:1.5b")
    assert result.returncode == 1, result
    assert result.stderr.strip().endswith(
        "qwen2.5:1.5b: not offered by this server; did you mean qwen2.5-instruct:1.5b? (its name before Hailo 5.2)")
    assert len(result.stderr.strip().splitlines()) == 1 and blobs(layout) == []


def test_doctor_fails_a_warmup_model_named_for_5_1_on_a_5_4_server_with_did_you_mean(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    run_54(layout, run)
    result = cli(layout, "doctor", "--json", warmup_model="deepseek_r1_distill_qwen:1.5b")
    assert result.returncode == 1, result
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["api"]["status"] == "ok", checks["api"]
    assert checks["warmup"]["status"] == "fail"
    assert checks["warmup"]["found"] == ("warmup.model deepseek_r1_distill_qwen:1.5b: not offered by this server; "
                                         "did you mean deepseek_r1:1.5b? (Hailo 5.2 renamed it)")
    text = cli(layout, "doctor", warmup_model="deepseek_r1_distill_qwen:1.5b")
    assert text.returncode == 1
    assert ("[FAIL] warmup      warmup.model deepseek_r1_distill_qwen:1.5b: not offered by this server; did you "
            "mean deepseek_r1:1.5b? (Hailo 5.2 renamed it)") in text.stdout.splitlines()


def test_doctor_passes_the_warmup_check_when_the_server_offers_the_model(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    run_54(layout, run)
    result = cli(layout, "doctor", "--json", warmup_model="deepseek_r1:1.5b")
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["warmup"] == {"id": "warmup", "status": "ok", "fix": "",
                                "found": "warmup.model deepseek_r1:1.5b: offered, not pulled yet (the warm-up "
                                         "pulls it)"}


def test_the_warm_up_logs_did_you_mean_and_pulls_nothing(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    run_54(layout, run)
    result = cli(layout, "warmup", warmup_model="qwen2.5-instruct:1.5b")
    assert result.returncode == 0, result  # the warm-up never fails the install
    assert result.stdout.splitlines() == [
        "warmup: qwen2.5-instruct:1.5b: not offered by this server; did you mean qwen2.5:1.5b? (Hailo 5.2 renamed "
        "it); change warmup.model (hailo-ollama-service config shows where it is set)"]
    assert blobs(layout) == []


def test_bench_of_a_5_1_name_on_a_5_4_server_says_did_you_mean(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests(source=MANIFESTS_54)
    run_54(layout, run)
    result = cli(layout, "bench", "qwen2.5-instruct:1.5b", "--runs", "1")
    assert result.returncode == 1, result
    assert result.stderr.strip().endswith(
        "qwen2.5-instruct:1.5b: not offered by this server; did you mean qwen2.5:1.5b? (Hailo 5.2 renamed it)")
    assert len(result.stderr.strip().splitlines()) == 1
