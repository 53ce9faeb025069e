"""Tests of generate.py and of the files in the tree derived from the schema."""

from __future__ import annotations

import re
from pathlib import Path

from hailo_ollama_service import __version__, generate, schema, settings

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_conffile_is_the_one_generated_from_the_schema():
    assert (REPO / "etc/hailo/hailo-ollama.yaml").read_text() == generate.conffile(), "run: make generate"


def test_the_debconf_templates_are_the_ones_generated_from_the_schema():
    assert (REPO / "debian/templates").read_text() == generate.templates(), "run: make generate"


def test_every_setting_appears_commented_out_with_its_default_and_help():
    text = generate.conffile()
    for setting in schema.SETTINGS:
        leaf = setting.key.split(".")[-1]
        assert f"{leaf}: {schema.yaml_scalar(setting, setting.default)}" in text
        assert setting.help in text
    assert all(line.startswith("#") or not line for line in text.splitlines())


def test_uncommenting_a_setting_and_its_section_pins_it():
    text = generate.conffile().replace("#server:", "server:").replace("#  port: 11434", "  port: 11500")
    assert {k: v for k, (v, _l) in settings.parse_layer(text, "x").values.items()} == {"server.port": 11500}


def test_each_question_has_a_template_whose_default_is_the_schema_default():
    blocks = generate.templates().split("\n\n")
    for setting in schema.SETTINGS:
        if not setting.question:
            continue
        block = next(b for b in blocks if b.startswith(f"Template: hailo-ollama-service/{setting.question}\n"))
        assert f"\nDefault: {setting.default}".rstrip() in block
        assert "\n_Description: " in block


def test_the_python_version_equals_the_debian_changelog_version():
    first = (REPO / "debian/changelog").read_text().splitlines()[0]
    match = re.match(r"^hailo-ollama-service \(([^)]+)\) ", first)
    assert match, first
    assert match.group(1) == __version__


def test_the_generator_refuses_an_unknown_target(capsys):
    assert generate.main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err
