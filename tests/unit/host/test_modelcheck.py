"""Tests of host/modelcheck.py: doctor's checks of the models listed and pulled and of ``warmup.model``."""

from __future__ import annotations

import json

from hailo_ollama_service.config.schema import DEFAULTS
from hailo_ollama_service.host import doctor, modelcheck, report

from unit_helpers import host_for, write

LIST_51 = ["deepseek_r1_distill_qwen:1.5b", "llama3.2:3b", "qwen2.5-coder:1.5b", "qwen2.5-instruct:1.5b",
           "qwen2:1.5b"]
LIST_54 = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]


def warm(model: str) -> dict:
    return dict(DEFAULTS, **{"warmup.model": model})


def test_a_warmup_model_named_for_5_1_fails_on_a_5_4_server_with_did_you_mean_and_the_fix():
    check = modelcheck.check_warmup(warm("qwen2.5-instruct:1.5b"), LIST_54, [], True)
    assert (check.id, check.status) == ("warmup", "fail")
    assert check.found == ("warmup.model qwen2.5-instruct:1.5b: not offered by this server; did you mean "
                           "qwen2.5:1.5b? (Hailo 5.2 renamed it)")
    assert "warmup.model" in check.fix and "hailo-ollama-service config" in check.fix


def test_a_warmup_model_named_for_5_4_fails_on_a_5_1_server_with_its_old_name():
    check = modelcheck.check_warmup(warm("deepseek_r1:1.5b"), LIST_51, [], True)
    assert check.status == "fail" and "did you mean deepseek_r1_distill_qwen:1.5b? (its name before Hailo 5.2)" \
        in check.found


def test_a_dropped_warmup_model_fails_with_what_the_server_offers_instead():
    check = modelcheck.check_warmup(warm("llama3.2:3b"), LIST_54, [], True)
    assert check.status == "fail" and "(Hailo 5.2 dropped it); it offers: llama3.2:1b, " in check.found


def test_an_offered_warmup_model_is_ok_and_says_whether_it_is_pulled():
    assert modelcheck.check_warmup(warm("qwen2:1.5b"), LIST_54, ["qwen2:1.5b"], True) == \
        report.Check("warmup", "ok", "warmup.model qwen2:1.5b: pulled")
    offered = modelcheck.check_warmup(warm("qwen3:1.7b"), LIST_54, [], True)
    assert offered.status == "ok" and "not pulled yet" in offered.found


def test_no_warmup_model_is_ok_and_what_cannot_be_told_is_skipped():
    assert modelcheck.check_warmup(warm(""), LIST_54, [], True).status == "ok"
    assert modelcheck.check_warmup(None, LIST_54, [], True).status == "skip"
    assert modelcheck.check_warmup(warm("qwen2.5-instruct:1.5b"), [], [], True).status == "skip"
    assert modelcheck.check_warmup(warm("qwen2.5-instruct:1.5b"), LIST_54, [], False).status == "skip"


def test_names_from_the_server_reach_the_warmup_line_escaped():
    check = modelcheck.check_warmup(warm("qwen2:1.5b"), ["qwen2\x1b[2J:1.5b"], [], True)
    assert check.status == "fail" and "\x1b" not in check.found and "qwen2\\x1b[2J:1.5b" in check.found


def test_doctor_reads_warmup_model_from_the_settings_and_the_list_from_the_running_server(paths, standin):
    write(paths.conffile, f"server:\n  host: 127.0.0.1\n  port: {standin.port}\nwarmup:\n  model: qwen2.5:1.5b\n")
    found = doctor.diagnose(host_for(paths))
    check = next(c for c in found if c.id == "warmup")
    assert check.status == "fail" and check.found == (
        "warmup.model qwen2.5:1.5b: not offered by this server; did you mean qwen2.5-instruct:1.5b? "
        "(its name before Hailo 5.2)")
    text = report.report_text(found)
    assert "[FAIL] warmup      warmup.model qwen2.5:1.5b: not offered by this server; did you mean" in text
    doc = report.report_json(found)
    assert not doc["ok"] and {"id": "warmup", "status": "fail", "found": check.found, "fix": check.fix} \
        in doc["checks"]
    assert json.loads(json.dumps(doc)) == doc
