"""Tests of host/report.py: the text and JSON reports of doctor's checks."""

from __future__ import annotations

import json

from hailo_ollama_service.host import doctor, report

from unit_helpers import host_for


def test_the_json_report_is_stable(paths):
    found = doctor.diagnose(host_for(paths))
    doc = json.loads(json.dumps(report.report_json(found)))
    assert set(doc) == {"version", "ok", "counts", "checks", "stack"}
    assert doc["version"] == 1 and doc["ok"] is False
    assert set(doc["counts"]) == {"ok", "warn", "fail", "skip"}
    assert sum(doc["counts"].values()) == len(doc["checks"])
    for check in doc["checks"]:
        assert set(check) == {"id", "status", "found", "fix"} and check["status"] in report.STATUSES
        assert "\n" not in check["found"]


def test_the_text_report_shows_a_fix_under_each_problem(paths):
    text = report.report_text(doctor.diagnose(host_for(paths)))
    assert "[FAIL] binary" in text and "fix: install Hailo's hailo-gen-ai-model-zoo" in text
    assert text.splitlines()[-1].endswith("skipped")


def test_a_report_without_the_stack_check_has_a_null_stack(paths):
    assert report.report_json([report.Check("unit", "ok", "active")])["stack"] is None
