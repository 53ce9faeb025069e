"""Files generated from the settings schema: the conffile and debconf templates.

``python3 -m hailo_ollama_service.generate conffile|templates`` prints one of
them; ``make generate`` writes them into the tree and unit tests fail when
the committed copies drift from the schema.
"""

from __future__ import annotations

import sys
import textwrap

from hailo_ollama_service.schema import DEBCONF_PACKAGE, SETTINGS, Setting, sections, yaml_scalar

CONFFILE_HEADER = """\
/etc/hailo/hailo-ollama.yaml: settings of the hailo-ollama service.

Every setting below is commented out and shows its built-in default.
Precedence, later wins: built-in defaults, then the answers given to
debconf (sudo dpkg-reconfigure hailo-ollama-service, stored in
/etc/hailo/hailo-ollama.d/00-debconf.yaml), then what you uncomment here.
To pin a value, uncomment its section line and the setting's line.
Saving this file re-renders the server's configuration and restarts it
only when something changed; an invalid file is refused (see
journalctl -u hailo-ollama-config.service) and the server keeps its last
good configuration.
Check an edit:           sudo hailo-ollama-service check
Show effective values:   hailo-ollama-service config
"""


def conffile() -> str:
    """Return the conffile as shipped: every key commented out with its default."""
    out = [f"# {line}".rstrip() for line in CONFFILE_HEADER.splitlines()]
    for section, members in sections().items():
        out.append("")
        if len(members) == 1 and members[0].key == section:
            setting = members[0]
            out.append(f"# {setting.help}")
            out.append(f"#{section}: {yaml_scalar(setting, setting.default)}")
            continue
        out.append(f"#{section}:")
        for setting in members:
            out.append(f"#  # {setting.help}")
            out.append(f"#  {setting.key.split('.', 1)[1]}: {yaml_scalar(setting, setting.default)}")
    return "\n".join(out) + "\n"


def _extended(text: str) -> list[str]:
    lines = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append(" .")
        lines.extend(" " + line for line in textwrap.wrap(paragraph, 72))
    return lines


def _template(setting: Setting) -> list[str]:
    default = "" if setting.default == "" else str(setting.default)
    long_text = (f"{setting.help}\n\nSetting '{setting.key}'. A value set in /etc/hailo/hailo-ollama.yaml "
                 "wins over this answer.")
    return [f"Template: {DEBCONF_PACKAGE}/{setting.question}", "Type: string",
            f"Default: {default}".rstrip(), f"_Description: {setting.prompt}", *_extended(long_text)]


def templates() -> str:
    """Return debian/templates: one string question per schema setting with a question."""
    blocks = [_template(s) for s in SETTINGS if s.question]
    blocks.append([f"Template: {DEBCONF_PACKAGE}/pinned", "Type: note",
                   "_Description: Some settings are pinned in /etc/hailo/hailo-ollama.yaml",
                   *_extended("These settings are set in /etc/hailo/hailo-ollama.yaml, which wins over "
                              "debconf, so they are not asked here: ${keys}\n\nEdit that file to change them.")])
    blocks.append([f"Template: {DEBCONF_PACKAGE}/invalid", "Type: error",
                   "_Description: Invalid value",
                   *_extended("${error}\n\nPlease enter another value.")])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def main(argv: list[str]) -> int:
    """Print the generated file named by argv[0]; return the exit status."""
    makers = {"conffile": conffile, "templates": templates}
    if len(argv) != 1 or argv[0] not in makers:
        print(f"usage: python3 -m hailo_ollama_service.generate {{{'|'.join(makers)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(makers[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
