"""The command table: every subcommand, its help, its options and its handler.

One source for the parser (``cli.main``), the man page and the bash
completion (``cli.docs``). Texts are plain (no ``%`` formatting); the
parser escapes them for argparse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from hailo_ollama_service.cli import handlers
from hailo_ollama_service.constants import METRICS_OUTPUT, TEXTFILE_DIR

Default = Union[None, bool, int, float, str, Callable[[], object]]


@dataclass(frozen=True)
class Option:
    """One option or positional argument of a command.

    ``names``: option strings (``--timeout``), or one name for a positional.
    ``kind``: "flag" (no value), "str", "int" or "float". ``nargs``: for a
    positional, None (one), "?" or "*". ``default``: a value, or a callable
    asked when the parser is built. ``exclusive``: options of a command that
    share this label are mutually exclusive.
    """

    names: tuple[str, ...]
    help: str
    kind: str = "str"
    metavar: str | None = None
    default: Default = None
    dest: str | None = None
    nargs: str | None = None
    exclusive: str | None = None

    @property
    def positional(self) -> bool:
        """True for a positional argument (its one name has no leading dash)."""
        return not self.names[0].startswith("-")

    @property
    def takes_value(self) -> bool:
        """True when the option is followed by a value."""
        return self.kind != "flag" and not self.positional

    @property
    def value_name(self) -> str:
        """What stands for the value in the docs: the metavar, else the name in capitals."""
        return self.metavar or self.names[-1].lstrip("-").upper()

    def synopsis(self) -> str:
        """The option as the man page and usage show it: ``--timeout S``, ``MODEL``."""
        if self.positional:
            return self.value_name
        names = ", ".join(self.names)
        return f"{names} {self.value_name}" if self.takes_value else names


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, longer description, options and handler."""

    name: str
    help: str
    handler: Callable[..., int]
    description: str = ""
    options: tuple[Option, ...] = ()


def _mainpid() -> int | None:
    import os

    from hailo_ollama_service.probe import mainpid
    return mainpid(dict(os.environ))


PROG = "hailo-ollama-service"
DESCRIPTION = ("Manage the hailo-ollama service: render its configuration, check settings, "
               "wait for the API.")
ROOT_HELP = "treat DIR as / for every file (tests, images); default $HAILO_OLLAMA_ROOT or /"

COMMANDS: tuple[Command, ...] = (
    Command("render", "write the upstream JSON, environment and drop-in", handlers.cmd_render,
            "Render the settings into /etc/xdg/hailo-ollama/hailo-ollama.json, /run/hailo-ollama/hailo-ollama.env "
            "and the systemd drop-in (root's outputs). Prints 'changed: PATH' per changed file or 'unchanged'.",
            (Option(("--keep-last-good",), "on invalid settings, report the error and keep serving the previous "
                    "output", "flag"),
             Option(("--try-restart",), "also restart hailo-ollama.service (if running) when anything changed, "
                    "upstream's manifests included (the server's start mirrors them, inside its sandbox)", "flag"))),
    Command("sync-models", "create /var/lib/hailo-ollama/models and mirror upstream's manifests",
            handlers.cmd_sync_models,
            "Create models/{manifests,blob} in /var/lib/hailo-ollama and mirror the manifests of "
            "/usr/share/hailo-ollama/models/manifests there. Runs as the service user only (the server's start "
            "runs it inside the sandbox); as root, restart hailo-ollama.service instead. Prints 'changed: PATH' "
            "per change or 'unchanged'."),
    Command("serve", "the unit's main process: sync-models, then exec hailo-ollama", handlers.cmd_serve,
            "What hailo-ollama.service runs as the service user: sync the model tree (as sync-models), then "
            "replace itself with /usr/bin/hailo-ollama (same pid, so $MAINPID is the server). Refuses to run "
            "as root."),
    Command("check", "validate the settings (like nginx -t)", handlers.cmd_check,
            "Validate the effective settings, or only FILE, or one KEY=VALUE.",
            (Option(("file",), "a settings file to validate on its own", metavar="FILE", nargs="?"),
             Option(("--value",), "validate one value, e.g. server.port=11500", metavar="KEY=VALUE"))),
    Command("config", "show every effective setting and where it came from", handlers.cmd_config,
            options=(Option(("--json",), "print JSON: {key: {value, source}}", "flag", exclusive="format"),
                     Option(("--debconf",), "print question|value|source lines for the debconf config script",
                            "flag", exclusive="format"))),
    Command("debconf-layer", "print the debconf layer YAML for KEY=VALUE answers", handlers.cmd_debconf_layer,
            options=(Option(("assignments",), "", metavar="KEY=VALUE", nargs="*"),)),
    Command("debconf-questions", "print 'question key priority' of every debconf question (postinst)",
            handlers.cmd_debconf_questions,
            "Print one line per debconf question of the package, in the order they are asked: the question's "
            "name, the settings key it sets and its priority. The postinst reads the answers with it."),
    Command("wait-ready", "wait until GET /api/version answers", handlers.cmd_wait_ready,
            "Poll /api/version on the configured host and port until it answers (exit 0) or the timeout "
            "passes (exit 1).",
            (Option(("--timeout",), "seconds to wait (default 60)", "float", "S", 60.0),
             Option(("--quiet",), "print nothing on success", "flag"),
             Option(("--pid",), "probe where process PID listens and stop when it exits (default $MAINPID, "
                    "which systemd sets for ExecStartPost=)", "int", "PID", _mainpid))),
    Command("preflight", "warn about a missing binary or device, or a port in use", handlers.cmd_preflight),
    Command("postinst-report", "wait (bounded) for the API and say how to debug if it fails",
            handlers.cmd_postinst_report,
            options=(Option(("--timeout",), "seconds to wait (default 30)", "float", "S", 30.0),)),
    Command("warmup", "pull warmup.model if missing and load it once", handlers.cmd_warmup),
    Command("keep-warm", "keep warmup.model loaded (run by hailo-ollama-keepwarm.timer)", handlers.cmd_keep_warm,
            "When warmup.keep_loaded is on, load warmup.model with keep_alive -1 (never unload); a failed load "
            "is unloaded and retried after 30 minutes, logged once."),
    Command("verify", "check the unit, the API, the listening socket and the models", handlers.cmd_verify,
            "Exit 0 when hailo-ollama.service is active and enabled, the API answers, the port is held by the "
            "server and models are listed; else exit 1."),
    Command("doctor", "diagnose everything that commonly goes wrong, with fixes", handlers.cmd_doctor,
            "Check the upstream binary and generation, the device and firmware, settings and rendered files, "
            "the diversion, the port, the unit, the API, models, whether the server offers warmup.model, "
            "access, disk, memory and temperature. Each line: "
            "status, what was found, the fix. Exit 1 when a check fails.",
            (Option(("--json",), "print the stable JSON report (version 1)", "flag"),)),
    Command("metrics", "print Prometheus metrics (for node_exporter's textfile collector)", handlers.cmd_metrics,
            "Print the Prometheus text exposition: API up, versions, the unit's restarts and last exit status, "
            "settings valid, models available/downloaded/loaded, device present and usable, free bytes for "
            "models, SoC temperature and throttling. Every probe is bounded in time.",
            (Option(("--output",), "write FILE atomically instead of printing", metavar="FILE"),)),
    Command("metrics-publish", "copy the metrics into node_exporter's textfile directory (root)",
            handlers.cmd_metrics_publish,
            "Run by hailo-ollama-metrics.service as root: check and copy the file that its unprivileged step "
            "wrote into DIR/hailo-ollama.prom, atomically, following no link.",
            (Option(("--from",), f"the unprivileged step's output (default {METRICS_OUTPUT})", metavar="FILE",
                    default=METRICS_OUTPUT, dest="source"),
             Option(("--to",), f"node_exporter's textfile directory (default {TEXTFILE_DIR})", metavar="DIR",
                    default=TEXTFILE_DIR),
             Option(("--remove",), "remove DIR/hailo-ollama.prom (package removal)", "flag"))),
    Command("keys", "add, list or revoke API keys of the access front (root)", handlers.cmd_keys,
            "keys add NAME [--admin]: make a key, print it once (only its SHA-256 is kept, in a root-only file) "
            "and reload the access front. A user key may chat, generate, list, show and use /v1; an admin key "
            "may also pull, delete, create, copy and push. --sha256 HEX installs a key made elsewhere by its "
            "hash (fleets). keys list: name, role, when added, start of the hash. keys revoke NAME: the key "
            "stops working at once; running streams finish.",
            (Option(("action",), "add, list or revoke", metavar="ACTION"),
             Option(("name",), "the key's name (add, revoke)", metavar="NAME", nargs="?"),
             Option(("--admin",), "the key may also pull, delete, create, copy and push", "flag"),
             Option(("--sha256",), "install a key by the SHA-256 (hex) of it, as made elsewhere", metavar="HEX"))),
    Command("pull", "download a model, with progress", handlers.cmd_pull,
            "Pull MODEL (e.g. qwen2:1.5b) through the server: a progress bar on a terminal, a line per 10% "
            "otherwise.",
            (Option(("model",), "", metavar="MODEL"),)),
    Command("bench", "time to first token (cold and warm) and tokens/s (median of N runs)", handlers.cmd_bench,
            "Unload MODEL, then generate N times: the first run loads it (cold), the others find it loaded "
            "(warm). Prints both times to first token and the median tokens/s.",
            (Option(("model",), "default: warmup.model or the first pulled model", metavar="MODEL", nargs="?"),
             Option(("--runs",), "number of runs (default 3)", "int", "N", 3))),
)

BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}
