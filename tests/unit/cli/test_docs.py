"""Tests of cli/docs.py: the man page and the completion cover the whole command table."""

from __future__ import annotations

import os
import subprocess

import pytest

from hailo_ollama_service.cli import docs
from hailo_ollama_service.cli.commands import COMMANDS
from hailo_ollama_service.cli.main import build_parser
from hailo_ollama_service.config.generate import roff


def test_the_man_page_of_the_command_covers_every_command_and_option_of_the_table():
    page = docs.man8()
    for command in COMMANDS:
        assert f".SS {roff(command.name)}\n.B {roff(docs.usage(command))}\n" in page
        for option in command.options:
            if option.help:
                assert f".B {roff(option.synopsis())}\n{roff(option.help)}\n" in page, (command.name, option)
    names = {c.name for c in COMMANDS}
    assert {"render", "check", "config", "doctor", "verify", "pull", "bench", "wait-ready"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_the_man_pages_usage_line_is_the_parsers_own(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # no wrapping
    with pytest.raises(SystemExit):
        build_parser().parse_args([command.name, "--help"])
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage == f"usage: hailo-ollama-service {docs.usage(command)}"


def test_the_bash_completion_offers_every_command_and_is_valid_bash(tmp_path):
    script = docs.completion()
    for command in COMMANDS:
        assert f"        {command.name}) opts=" in script
    path = tmp_path / "completion"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_the_bash_completion_completes_commands_and_options(tmp_path):
    if not os.path.exists("/usr/share/bash-completion/bash_completion"):
        pytest.skip("bash-completion is not installed")
    path = tmp_path / "completion"
    path.write_text(docs.completion())
    probe = (f". /usr/share/bash-completion/bash_completion; . {path}; "
             "complete_line() { COMP_LINE=\"$1\"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< \"$1\"; "
             "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _hailo_ollama_service; echo \"${COMPREPLY[@]}\"; }; "
             "complete_line 'hailo-ollama-service do'; complete_line 'hailo-ollama-service doctor --j'; "
             "complete_line 'hailo-ollama-service metrics-publish --r'")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
    assert out == ["doctor", "--json", "--remove"], out


def test_the_docs_generator_refuses_an_unknown_target(capsys):
    assert docs.main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err
