"""Tests of config/schema.py's debconf questions against the debconf scripts, which agree with them:
the config script's static question list (it runs before the package is
unpacked, so it cannot ask the command) is pinned here, and the postinst
names no question itself."""

from __future__ import annotations

import re
from pathlib import Path

from hailo_ollama_service.cli import main as cli
from hailo_ollama_service.config.schema import SETTINGS

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "debian/hailo-ollama-service.config"
POSTINST = REPO / "debian/hailo-ollama-service.postinst"
SCHEMA_QUESTIONS = [(s.question, s.key, s.priority) for s in SETTINGS if s.question]


def config_questions(text: str) -> list[tuple[str, str, str]]:
    """(question, key, priority) as the config script asks them: its ``ask``
    lines in order, each with the key its ``key_of`` gives."""
    keys = dict(re.findall(r"^\s+([a-z-]+)\) echo ([a-z_.]+) ;;$", text, re.M))
    return [(question, keys.get(question, "?"), priority)
            for question, priority in re.findall(r"^\s+ask ([a-z-]+) (low|medium|high|critical)$", text, re.M)]


def test_the_config_script_asks_every_question_of_the_schema_with_its_key_and_priority_in_order():
    assert config_questions(CONFIG.read_text()) == SCHEMA_QUESTIONS


def test_the_pin_fails_when_the_config_script_drifts_from_the_schema():
    text = CONFIG.read_text()
    assert config_questions(text.replace("ask port medium", "ask port low")) != SCHEMA_QUESTIONS
    assert config_questions(text.replace("port) echo server.port ;;", "port) echo server.host ;;")) != SCHEMA_QUESTIONS
    assert config_questions(text.replace("        ask keep-loaded low\n", "")) != SCHEMA_QUESTIONS


def test_debconf_questions_prints_question_key_and_priority_of_the_schema(capsys):
    assert cli.main(["debconf-questions"]) == 0
    rows = [tuple(line.split(" ")) for line in capsys.readouterr().out.splitlines()]
    assert rows == SCHEMA_QUESTIONS


def test_the_postinst_reads_the_answers_in_a_loop_over_the_commands_list():
    text = POSTINST.read_text()
    assert "hailo-ollama-service debconf-questions" in text
    assert re.findall(r'db_get "\$PKG/\$question"', text)
    assert not re.findall(r"db_get (?:hailo-ollama-service|\"?\$PKG)/[a-z]", text), "a question named by hand"
