"""The ``hailo-ollama-service`` command line.

Each subcommand imports only what it needs: ``render`` runs at every
service start and every conffile edit. Errors are one line on stderr, never
a traceback (set HAILO_OLLAMA_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from hailo_ollama_service import __version__
from hailo_ollama_service.probe import mainpid as _mainpid

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _err(message: str) -> None:
    """Print one line on stderr. A last guard: any character left non-printable
    (what the server, /proc or a tool said is escaped where it is quoted) is
    escaped here, so no message can move the cursor or split the line."""
    if not message.isprintable():
        from hailo_ollama_service.untrusted import shown
        message = "".join(c if c.isprintable() else shown(c) for c in message)
    print(f"hailo-ollama-service: {message}", file=sys.stderr, flush=True)


def _paths(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from hailo_ollama_service.paths import make_paths
    return make_paths(args.root)


def cmd_render(args: argparse.Namespace) -> int:
    """Render every output; see render.apply."""
    from hailo_ollama_service.render import apply
    result = apply(_paths(args), args.keep_last_good, args.try_restart,
                   report=lambda line: print(line, flush=True))
    for warning in result.warnings:
        _err(f"warning: {warning}")
    if result.error:
        _err(f"error: {result.error}")
    if not result.changed:
        print("unchanged")
    return EXIT_OK


def cmd_sync_models(args: argparse.Namespace) -> int:
    """The service user's step: models/{manifests,blob} and the manifest mirror.

    As the service user only (``serve`` runs it at every start, inside the
    sandbox); refused as root, see state.sync_here.
    """
    from hailo_ollama_service import state
    changed, warnings, error = state.sync_here(_paths(args))
    for line in changed:
        print(f"changed: {line}", flush=True)
    for warning in warnings:
        _err(f"warning: {warning}")
    if error:
        _err(f"error: {error}")
        return EXIT_FAIL
    if not changed:
        print("unchanged")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """The unit's main process; see serve.serve (returns only on failure)."""
    from hailo_ollama_service import serve
    return serve.serve(args.root or "/")


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the effective settings, one file, or one KEY=VALUE."""
    from pathlib import Path

    from hailo_ollama_service import settings
    if args.value:
        settings.parse_assignment(args.value)
    elif args.file:
        settings.read_layer(Path(args.file))
    else:
        settings.load(_paths(args))
    print("ok")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    """Print every effective value and where it came from."""
    from hailo_ollama_service import settings
    from hailo_ollama_service.generate import debconf_text
    from hailo_ollama_service.schema import SETTINGS, yaml_scalar
    paths = _paths(args)
    effective = settings.load(paths)
    if args.json:
        doc = {key: {"value": effective.values[key], "source": effective.sources[key]}
               for key in effective.values}
        print(json.dumps(doc, indent=2))
    elif args.debconf:
        for setting in SETTINGS:
            if not setting.question:
                continue
            source = effective.sources[setting.key]
            kind = ("default" if source == "default" else
                    "conffile" if source == str(paths.conffile) else "debconf")
            print(f"{setting.question}|{debconf_text(setting, effective.values[setting.key])}|{kind}")
    else:
        width = max(len(s.key) for s in SETTINGS)
        for setting in SETTINGS:
            value = effective.values[setting.key]
            shown = yaml_scalar(setting, value)
            print(f"{setting.key:<{width}}  {shown:<22}  {effective.sources[setting.key]}")
    return EXIT_OK


def cmd_debconf_layer(args: argparse.Namespace) -> int:
    """Print the YAML of the debconf layer for KEY=VALUE answers."""
    from hailo_ollama_service import settings
    values = dict(settings.parse_assignment(item) for item in args.assignments)
    text = settings.layer_yaml(values, "Answers given to debconf (install, dpkg-reconfigure, preseed).\n"
                               "Written by the package; change them with: sudo dpkg-reconfigure "
                               "hailo-ollama-service\nSettings in /etc/hailo/hailo-ollama.yaml win over "
                               "these.")
    settings.parse_layer(text, "debconf answers")
    sys.stdout.write(text)
    return EXIT_OK


def _endpoint(args: argparse.Namespace) -> tuple[str, int, str]:
    """Return (host, port, URL) of the API as last rendered (what the server serves)."""
    from hailo_ollama_service import api, render
    values = render.served_values(_paths(args))
    return api.client_host(str(values["server.host"])), int(values["server.port"]), api.base_url(values)


def cmd_wait_ready(args: argparse.Namespace) -> int:
    """Wait until the API answers; exit 0 when it does, 1 on timeout (see probe.report_wait)."""
    from hailo_ollama_service import probe
    host, port, _url = _endpoint(args)
    return probe.report_wait(host, port, args.timeout, args.pid, args.quiet)


def cmd_preflight(args: argparse.Namespace) -> int:
    """Print postinst's warnings; always succeeds."""
    from hailo_ollama_service import checks
    try:
        _host, port, _url = _endpoint(args)
    except Exception as err:  # invalid settings: render reports them
        _err(f"warning: {err}")
        return EXIT_OK
    for warning in checks.preflight(port, _paths(args).root):
        _err(f"warning: {warning}")
    return EXIT_OK


def cmd_postinst_report(args: argparse.Namespace) -> int:
    """Wait (bounded) for the API and print the outcome; always succeeds."""
    from hailo_ollama_service import api
    hint = "see: journalctl -u hailo-ollama.service -n 100 --no-pager"
    try:
        host, port, url = _endpoint(args)
    except Exception as err:
        _err(f"warning: {err}; {hint}")
        return EXIT_OK
    from hailo_ollama_service import checks
    if checks.port_problem(port, _paths(args).root):  # preflight named the program: no use waiting
        _err(f"warning: hailo-ollama cannot answer on {url} while another program holds port {port}; {hint}")
        return EXIT_OK
    found = api.wait_ready(host, port, args.timeout)
    if found is not None:
        from hailo_ollama_service.untrusted import shown
        print(f"hailo-ollama is running: {url} (API version {shown(found)})")
    else:
        _err(f"warning: hailo-ollama did not answer on {url} within {args.timeout:g} s; {hint}")
    return EXIT_OK


def cmd_warmup(args: argparse.Namespace) -> int:
    """Pull warmup.model if set and missing, then load it with a tiny chat."""
    from hailo_ollama_service import render, warmup
    values = render.served_values(_paths(args))
    return warmup.run(values, log=lambda line: print(line, flush=True))


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print (or write atomically to --output) the Prometheus exposition."""
    from hailo_ollama_service import metrics
    text = metrics.exposition(metrics.collect(_host(args)))
    if args.output:
        from pathlib import Path

        from hailo_ollama_service.fsutil import write_atomic
        write_atomic(Path(args.output), text.encode(), 0o644)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_metrics_publish(args: argparse.Namespace) -> int:
    """Root's step: copy the unprivileged step's metrics into node_exporter's directory."""
    from pathlib import Path

    from hailo_ollama_service import metrics
    target = _paths(args).root / args.to.lstrip("/")
    if args.remove:
        metrics.unpublish(target)
    else:
        metrics.publish(Path(args.source), target)
    return EXIT_OK


def cmd_keep_warm(args: argparse.Namespace) -> int:
    """Load warmup.model with keep_alive -1 (hailo-ollama-keepwarm.timer); see keepwarm.run."""
    from hailo_ollama_service import keepwarm, render
    paths = _paths(args)
    return keepwarm.run(render.served_values(paths), lambda line: print(line, flush=True), paths.keep_state)


def _host(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from hailo_ollama_service.doctor import Host
    return Host(_paths(args))


def cmd_verify(args: argparse.Namespace) -> int:
    """Check unit, API, socket and models; exit 1 on any failure."""
    from hailo_ollama_service import doctor
    found = doctor.verify(_host(args))
    sys.stdout.write(doctor.report_text(found))
    if any(c.status == "fail" for c in found):
        _err("verification failed; see: journalctl -u hailo-ollama.service -n 100 --no-pager")
        return EXIT_FAIL
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run every check; exit 1 when one fails."""
    from hailo_ollama_service import doctor
    found = doctor.diagnose(_host(args))
    if args.json:
        print(json.dumps(doctor.report_json(found), indent=2))
    else:
        sys.stdout.write(doctor.report_text(found))
    return EXIT_FAIL if any(c.status == "fail" for c in found) else EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull a model with progress."""
    from hailo_ollama_service import pull, render
    values = render.served_values(_paths(args))
    progress = pull.Progress(sys.stdout, sys.stdout.isatty())
    try:
        pull.pull(values, args.model, progress)
    except pull.PullError as err:
        _err(f"error: {err}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        _err("interrupted; upstream 5.1 stops when the client of a pull goes away, and systemd starts it again "
             "(a partial download is discarded)")
        return 130
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Time to first token and tokens/s, median of N runs."""
    from hailo_ollama_service import benchmark, doctor, render
    paths = _paths(args)
    values = render.served_values(paths)
    host = doctor.Host(paths)
    try:
        return benchmark.bench(values, args.model or "", args.runs, lambda: doctor.soc_temperature(host),
                               lambda line: print(line, flush=True))
    except benchmark.BenchError as err:
        _err(f"error: {err}")
        return EXIT_FAIL


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    from hailo_ollama_service.paths import METRICS_OUTPUT, TEXTFILE_DIR
    parser = argparse.ArgumentParser(
        prog="hailo-ollama-service",
        description="Manage the hailo-ollama service: render its configuration, check settings, "
                    "wait for the API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", metavar="DIR", default=os.environ.get("HAILO_OLLAMA_ROOT"),
                        help="treat DIR as / for every file (tests, images); default $HAILO_OLLAMA_ROOT or /")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("render", help="write the upstream JSON, environment and drop-in",
                       description="Render the settings into /etc/xdg/hailo-ollama/hailo-ollama.json, "
                       "/run/hailo-ollama/hailo-ollama.env and the systemd drop-in (root's outputs). "
                       "Prints 'changed: PATH' per changed file or 'unchanged'.")
    p.add_argument("--keep-last-good", action="store_true",
                   help="on invalid settings, report the error and keep serving the previous output")
    p.add_argument("--try-restart", action="store_true",
                   help="also restart hailo-ollama.service (if running) when anything changed, upstream's "
                   "manifests included (the server's start mirrors them, inside its sandbox)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("sync-models", help="create /var/lib/hailo-ollama/models and mirror upstream's manifests",
                       description="Create models/{manifests,blob} in /var/lib/hailo-ollama and mirror the "
                       "manifests of /usr/share/hailo-ollama/models/manifests there. Runs as the service user "
                       "only (the server's start runs it inside the sandbox); as root, restart "
                       "hailo-ollama.service instead. Prints 'changed: PATH' per change or 'unchanged'.")
    p.set_defaults(func=cmd_sync_models)

    p = sub.add_parser("serve", help="the unit's main process: sync-models, then exec hailo-ollama",
                       description="What hailo-ollama.service runs as the service user: sync the model "
                       "tree (as sync-models), then replace itself with /usr/bin/hailo-ollama (same pid, "
                       "so $MAINPID is the server). Refuses to run as root.")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check", help="validate the settings (like nginx -t)",
                       description="Validate the effective settings, or only FILE, or one KEY=VALUE.")
    p.add_argument("file", nargs="?", help="a settings file to validate on its own")
    p.add_argument("--value", metavar="KEY=VALUE", help="validate one value, e.g. server.port=11500")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("config", help="show every effective setting and where it came from")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print JSON: {key: {value, source}}")
    group.add_argument("--debconf", action="store_true",
                       help="print question|value|source lines for the debconf config script")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("debconf-layer", help="print the debconf layer YAML for KEY=VALUE answers")
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_debconf_layer)

    p = sub.add_parser("wait-ready", help="wait until GET /api/version answers",
                       description="Poll /api/version on the configured host and port until it answers "
                       "(exit 0) or the timeout passes (exit 1).")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds to wait (default 60)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--pid", type=int, default=_mainpid(os.environ), metavar="PID",
                   help="probe where process PID listens and stop when it exits "
                   "(default $MAINPID, which systemd sets for ExecStartPost=)")
    p.set_defaults(func=cmd_wait_ready)

    p = sub.add_parser("preflight", help="warn about a missing binary or device, or a port in use")
    p.set_defaults(func=cmd_preflight)

    p = sub.add_parser("postinst-report", help="wait (bounded) for the API and say how to debug if it fails")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait (default 30)")
    p.set_defaults(func=cmd_postinst_report)

    p = sub.add_parser("warmup", help="pull warmup.model if missing and load it once")
    p.set_defaults(func=cmd_warmup)

    p = sub.add_parser("keep-warm", help="keep warmup.model loaded (run by hailo-ollama-keepwarm.timer)",
                       description="When warmup.keep_loaded is on, load warmup.model with keep_alive -1 "
                       "(never unload); a failed load is unloaded and retried after 30 minutes, logged once.")
    p.set_defaults(func=cmd_keep_warm)

    p = sub.add_parser("verify", help="check the unit, the API, the listening socket and the models",
                       description="Exit 0 when hailo-ollama.service is active and enabled, the API "
                       "answers, the port is held by the server and models are listed; else exit 1.")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("doctor", help="diagnose everything that commonly goes wrong, with fixes",
                       description="Check the upstream binary and generation, the device and firmware, "
                       "settings and rendered files, the diversion, the port, the unit, the API, models, "
                       "disk, memory and temperature. Each line: status, what was found, the fix. "
                       "Exit 1 when a check fails.")
    p.add_argument("--json", action="store_true", help="print the stable JSON report (version 1)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("metrics", help="print Prometheus metrics (for node_exporter's textfile collector)",
                       description="Print the Prometheus text exposition: API up, versions, the unit's "
                       "restarts and last exit status, settings valid, models available/downloaded/loaded, "
                       "device present and usable, free bytes for models, SoC temperature and throttling. "
                       "Every probe is bounded in time.")
    p.add_argument("--output", metavar="FILE", help="write FILE atomically instead of printing")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("metrics-publish", help="copy the metrics into node_exporter's textfile directory (root)",
                       description="Run by hailo-ollama-metrics.service as root: check and copy the file "
                       "that its unprivileged step wrote into DIR/hailo-ollama.prom, atomically, following "
                       "no link.")
    p.add_argument("--from", dest="source", metavar="FILE", default=METRICS_OUTPUT,
                   help="the unprivileged step's output (default %(default)s)")
    p.add_argument("--to", metavar="DIR", default=TEXTFILE_DIR,
                   help="node_exporter's textfile directory (default %(default)s)")
    p.add_argument("--remove", action="store_true", help="remove DIR/hailo-ollama.prom (package removal)")
    p.set_defaults(func=cmd_metrics_publish)

    p = sub.add_parser("pull", help="download a model, with progress",
                       description="Pull MODEL (e.g. qwen2:1.5b) through the server: a progress bar on a "
                       "terminal, a line per 10%% otherwise.")
    p.add_argument("model", metavar="MODEL")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("bench", help="time to first token (cold and warm) and tokens/s (median of N runs)",
                       description="Unload MODEL, then generate N times: the first run loads it (cold), the "
                       "others find it loaded (warm). Prints both times to first token and the median tokens/s.")
    p.add_argument("model", metavar="MODEL", nargs="?", help="default: warmup.model or the first pulled model")
    p.add_argument("--runs", type=int, default=3, metavar="N", help="number of runs (default 3)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from hailo_ollama_service.fsutil import WriteError
    from hailo_ollama_service.nofollow import Unsafe
    from hailo_ollama_service.settings import ConfigError
    try:
        return func(args)
    except (ConfigError, WriteError, Unsafe) as err:
        _err(f"error: {err}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        _err(f"error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}")
        return EXIT_FAIL
    except Exception as err:  # a bug: one line, unless debugging
        if os.environ.get("HAILO_OLLAMA_DEBUG"):
            raise
        _err(f"internal error: {type(err).__name__}: {err} (run with HAILO_OLLAMA_DEBUG=1 for details)")
        return 70
