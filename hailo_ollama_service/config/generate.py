"""Files generated from the settings schema: the conffile, the debconf
templates, the example preseed, hailo-ollama.yaml(5) and the README's table
of settings.

``python3 -m hailo_ollama_service.config.generate conffile|templates|preseed|man5|settings-table``
prints one of them; ``make generate`` writes the conffile, templates, preseed
and table into the tree and unit tests fail when the committed copies drift
from the schema
(debian/rules builds the man page). The command's own man page and
completion come from its command table (``cli.docs``).
"""

from __future__ import annotations

import sys
import textwrap
from typing import Callable

from hailo_ollama_service.config.schema import SETTINGS, Setting, sections, yaml_scalar
from hailo_ollama_service.constants import DEBCONF_PACKAGE, DOC_DIR

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
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append(" .")
        lines.extend(" " + line for line in textwrap.wrap(paragraph, 72))
    return lines


def debconf_text(setting: Setting, value: object) -> str:
    """A value as debconf holds it: "true"/"false" for a boolean question."""
    if setting.is_bool:
        return "true" if value else "false"
    return "" if value == "" else str(value)


def _template(setting: Setting) -> list[str]:
    default = debconf_text(setting, setting.default)
    long_text = (f"{setting.help}\n\nSetting '{setting.key}'. A value set in /etc/hailo/hailo-ollama.yaml "
                 "wins over this answer.")
    return [f"Template: {DEBCONF_PACKAGE}/{setting.question}", f"Type: {'boolean' if setting.is_bool else 'string'}",
            f"Default: {default}".rstrip(), f"_Description: {setting.prompt}", *_extended(long_text)]


def templates() -> str:
    """Return debian/templates: one question (string, or boolean) per schema setting with a question."""
    blocks = [_template(s) for s in SETTINGS if s.question]
    blocks.append([f"Template: {DEBCONF_PACKAGE}/pinned", "Type: note",
                   "_Description: Some settings are pinned in /etc/hailo/hailo-ollama.yaml",
                   *_extended("These settings are set in /etc/hailo/hailo-ollama.yaml, which wins over "
                              "debconf, so they are not asked here: ${keys}\n\nEdit that file to change them.")])
    blocks.append([f"Template: {DEBCONF_PACKAGE}/invalid", "Type: error",
                   "_Description: Invalid value",
                   *_extended("${error}\n\nPlease enter another value.")])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def roff(text: str) -> str:
    """Escape text for roff: backslashes, leading dots/quotes, hyphens in options."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.splitlines())


def man5() -> str:
    """Return hailo-ollama.yaml(5) in roff: every setting of the schema."""
    from hailo_ollama_service import __version__
    lines = [f'.TH HAILO-OLLAMA.YAML 5 "" "hailo-ollama-service {__version__}" "File formats"',
             ".SH NAME", "hailo-ollama.yaml \\- settings of the hailo-ollama service", ".SH DESCRIPTION",
             roff(" ".join(CONFFILE_HEADER.splitlines()[2:11])), ".PP",
             roff("The file is YAML: sections with settings below them. Unknown settings, wrong types, "
                   "values out of range, aliases, non-UTF-8 text and files over 1 MiB are refused with one "
                   "line naming the file, the line and the setting; nothing is written and the server keeps "
                   "its last good configuration."), ".SH SETTINGS"]
    for setting in SETTINGS:
        lines += [".TP", f".B {roff(setting.key)}", roff(setting.help), ".br",
                  roff(f"Default: {yaml_scalar(setting, setting.default)}" +
                        (f"; debconf question: {DEBCONF_PACKAGE}/{setting.question}" if setting.question else ""))]
    lines += [".SH EXAMPLE", ".nf", "server:", "  port: 11500", "resource_limits:", '  memory_max: "3G"', ".fi",
              ".SH SEE ALSO", ".BR hailo-ollama-service (8),", ".BR dpkg-reconfigure (8),",
              ".BR systemd.resource-control (5)", ".PP",
              roff(f"The README, with this table of settings and how to change them: {DOC_DIR}/README.md; the pages "
                   f"on security, fleets and the rest: {DOC_DIR}/docs/ (compressed when large: read them with zless).")]
    return "\n".join(lines) + "\n"


def preseed() -> str:
    """Return an example preseed file: every debconf question with its default."""
    out = ["# Preseed for hailo-ollama-service: answers for an unattended install.",
           "# Load with:  sudo debconf-set-selections examples/preseed.cfg",
           "# then:       sudo DEBIAN_FRONTEND=noninteractive apt install ./hailo-ollama-service_*_all.deb",
           "# or, on an installed Pi: sudo DEBIAN_FRONTEND=noninteractive dpkg-reconfigure hailo-ollama-service",
           "# Every value below is the default; change what you need. A setting pinned in",
           "# /etc/hailo/hailo-ollama.yaml wins over these answers."]
    for setting in SETTINGS:
        if not setting.question:
            continue
        out += ["", f"# {setting.key}: {setting.help}",
                f"{DEBCONF_PACKAGE} {DEBCONF_PACKAGE}/{setting.question} "
                f"{'boolean' if setting.is_bool else 'string'} {debconf_text(setting, setting.default)}".rstrip()]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    """Return the README's table of settings (Markdown): every setting of the
    schema with its default, its debconf question and its help text."""
    out = ["| setting | default | debconf question | meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        question = f"`{setting.question}`" if setting.question else "–"
        out.append(f"| `{setting.key}` | `{yaml_scalar(setting, setting.default)}` | {question} | "
                   f"{_cell(setting.help)} |")
    return "\n".join(out) + "\n"


def print_generated(module: str, makers: dict[str, Callable[[], str]], argv: list[str]) -> int:
    """Print the file that ``makers`` makes for the name in argv[0] (``python3
    -m MODULE NAME``); return the exit status, 2 with a usage line otherwise."""
    if len(argv) != 1 or argv[0] not in makers:
        print(f"usage: python3 -m {module} {{{'|'.join(makers)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(makers[argv[0]]())
    return 0


def main(argv: list[str]) -> int:
    """Print the generated file named by argv[0]; return the exit status."""
    return print_generated("hailo_ollama_service.config.generate",
                           {"conffile": conffile, "templates": templates, "man5": man5, "preseed": preseed,
                            "settings-table": settings_table}, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
