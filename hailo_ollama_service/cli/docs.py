"""hailo-ollama-service(8) and the bash completion, generated from the command table.

``python3 -m hailo_ollama_service.cli.docs man8|completion`` prints one of
them (debian/rules builds both into the package).
"""

from __future__ import annotations

import sys

from hailo_ollama_service import __version__
from hailo_ollama_service.cli.commands import COMMANDS, Command
from hailo_ollama_service.config.generate import print_generated, roff
from hailo_ollama_service.constants import DOC_DIR, DOC_PAGES


def usage(command: Command) -> str:
    """The command's synopsis as argparse prints it: options first, then positionals."""
    parts = [command.name, "[-h]"]
    done: set[str] = set()
    for option in command.options:
        if option.positional or option.exclusive in done:
            continue
        if option.exclusive:
            done.add(option.exclusive)
            members = [o.synopsis() for o in command.options if o.exclusive == option.exclusive]
            parts.append("[" + " | ".join(members) + "]")
        elif option.takes_value:
            parts.append(f"[{option.names[0]} {option.value_name}]")
        else:
            parts.append(f"[{option.names[0]}]")
    for option in command.options:
        if option.positional:
            name = option.synopsis()
            parts.append({"?": f"[{name}]", "*": f"[{name} ...]"}.get(option.nargs or "", name))
    return " ".join(parts)


def man8() -> str:
    """Return hailo-ollama-service(8) in roff: every command of the table."""
    lines = [f'.TH HAILO-OLLAMA-SERVICE 8 "" "hailo-ollama-service {__version__}" "System administration"',
             ".SH NAME", "hailo-ollama-service \\- manage Hailo's hailo-ollama server as a systemd service",
             ".SH SYNOPSIS", ".B hailo-ollama-service", ".RB [ \\-\\-root", ".IR DIR ]", ".I command",
             ".RI [ options ]", ".SH DESCRIPTION",
             roff("hailo-ollama-service runs /usr/bin/hailo-ollama from Hailo's hailo-gen-ai-model-zoo package "
                   "as hailo-ollama.service (port 11434 by default). Its settings live in "
                   "/etc/hailo/hailo-ollama.yaml, see hailo-ollama.yaml(5). This command renders them into the "
                   "upstream configuration, validates them, and checks, diagnoses and exercises the service."),
             ".SH GLOBAL OPTIONS", ".TP", ".B \\-\\-root DIR",
             roff("Treat DIR as / for every file (tests, images). Default: $HAILO_OLLAMA_ROOT or /."),
             ".TP", ".B \\-\\-version", "Print the version.", ".SH COMMANDS"]
    for command in COMMANDS:
        text = command.description or command.help[:1].upper() + command.help[1:] + "."
        lines += [".SS " + roff(command.name), ".B " + roff(usage(command)), ".PP", roff(text)]
        for option in command.options:
            if option.help:
                lines += [".TP", ".B " + roff(option.synopsis()), roff(option.help)]
    lines += [".SH FILES", ".TP", ".I /etc/hailo/hailo-ollama.yaml", "The settings (a conffile).",
              ".TP", ".I /etc/hailo/hailo-ollama.d/00-debconf.yaml", "The answers given to debconf.",
              ".TP", ".I /etc/xdg/hailo-ollama/hailo-ollama.json", "Rendered upstream configuration (5.1).",
              ".TP", ".I /run/hailo-ollama/hailo-ollama.env", "Rendered upstream environment (5.3).",
              ".TP", ".I /var/lib/hailo-ollama/models", "Model manifests and downloaded blobs.",
              ".SH EXIT STATUS", "0 on success, 1 when a check or command failed, 2 for a usage error.",
              ".SH SEE ALSO", ".BR hailo-ollama.yaml (5),", ".BR systemctl (1),", ".BR journalctl (1),",
              ".BR dpkg-reconfigure (8)", ".PP", see_also_docs()]
    return "\n".join(lines) + "\n"


def see_also_docs() -> str:
    """Return the roff paragraph that points to the documentation the
    package installs (the README and the pages of DOC_PAGES)."""
    pages = ", ".join(f"docs/{page}.md" for page in DOC_PAGES)
    return roff(f"The README (install, check, settings, models, clients, upgrade, remove, "
                f"troubleshooting) and the pages on its details, security and access, fleets, "
                f"doctor's checks, figures and decisions: {DOC_DIR}/README.md and {pages} there "
                f"(compressed when large: read them with zless).")


def completion() -> str:
    """Return a bash completion script for the CLI (subcommands and their options)."""
    cases = []
    for command in COMMANDS:
        opts = " ".join(["-h", "--help"] + [name for o in command.options if not o.positional for name in o.names])
        cases.append(f"        {command.name}) opts=\"{opts}\" ;;")
    names = " ".join(command.name for command in COMMANDS)
    return f"""# bash completion for hailo-ollama-service (generated from its command table)
_hailo_ollama_service() {{
    local cur prev words cword cmd i opts
    _init_completion || return
    cmd=""
    for ((i = 1; i < cword; i++)); do
        case "${{words[i]}}" in
            --root) ((i++)) ;;
            -*) ;;
            *) cmd="${{words[i]}}"; break ;;
        esac
    done
    if [[ $prev == --root ]]; then
        _filedir -d
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "{names} --root --version --help" -- "$cur"))
        return
    fi
    case "$cmd" in
{chr(10).join(cases)}
        *) opts="" ;;
    esac
    case "$cmd" in
        check) [[ $cur != -* ]] && {{ _filedir yaml; return; }} ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}} &&
    complete -F _hailo_ollama_service hailo-ollama-service
"""


def main(argv: list[str]) -> int:
    """Print the generated file named by argv[0]; return the exit status."""
    return print_generated("hailo_ollama_service.cli.docs", {"man8": man8, "completion": completion}, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
