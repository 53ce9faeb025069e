"""Tests of config/generate.py and of the files in the tree derived from the schema."""

from __future__ import annotations

import re
from pathlib import Path

from hailo_ollama_service import __version__
from hailo_ollama_service.cli import docs  # the man pages are checked with man together
from hailo_ollama_service.config import generate, schema
from hailo_ollama_service.config import load as settings

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_conffile_is_the_one_generated_from_the_schema():
    assert (REPO / "etc/hailo/hailo-ollama.yaml").read_text() == generate.conffile(), "run: make generate"


def test_the_debconf_templates_are_the_ones_generated_from_the_schema():
    assert (REPO / "debian/templates").read_text() == generate.templates(), "run: make generate"


def test_the_readme_table_of_settings_is_the_one_generated_from_the_schema():
    text = (REPO / "README.md").read_text()
    start = text.index("<!-- settings-table:")
    block = text[text.index("\n", start) + 1:text.index("<!-- end settings-table -->")]
    assert block == generate.settings_table(), "run: make generate"


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
        assert f"\nDefault: {generate.debconf_text(setting, setting.default)}".rstrip() in block
        assert f"\nType: {'boolean' if setting.is_bool else 'string'}\n" in block
        assert "\n_Description: " in block


def test_the_python_version_equals_the_debian_changelog_version():
    first = (REPO / "debian/changelog").read_text().splitlines()[0]
    match = re.match(r"^hailo-ollama-service \(([^)]+)\) ", first)
    assert match, first
    assert match.group(1) == __version__


def test_the_generator_refuses_an_unknown_target(capsys):
    assert generate.main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err


def test_the_man_page_of_the_settings_file_covers_every_setting_with_its_default():
    page = generate.man5()
    for setting in schema.SETTINGS:
        assert f".B {generate.roff(setting.key)}\n" in page  # noqa: SLF001
        assert generate.roff(f"Default: {schema.yaml_scalar(setting, setting.default)}") in page  # noqa: SLF001


def test_the_man_pages_render_without_warnings(tmp_path):
    import shutil
    import subprocess
    if not shutil.which("man"):
        import pytest
        pytest.skip("man is not installed")
    for name, text in (("page.8", docs.man8()), ("page.5", generate.man5())):
        path = tmp_path / name
        path.write_text(text)
        done = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True,
                              env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "NAME" in done.stdout


def test_the_example_preseed_is_generated_and_names_every_question_with_its_default():
    text = (REPO / "examples/preseed.cfg").read_text()
    assert text == generate.preseed(), "run: make generate"
    for setting in schema.SETTINGS:
        if setting.question:
            kind = "boolean" if setting.is_bool else "string"
            line = (f"hailo-ollama-service hailo-ollama-service/{setting.question} {kind} "
                    f"{generate.debconf_text(setting, setting.default)}")
            assert line.rstrip() + "\n" in text
