"""The handlers of the command table: thin, each importing only what it needs.

A handler takes the parsed arguments and returns the exit status; errors
are raised (``cli.main`` turns them into one line on stderr) or printed
here with ``err``. The work itself lives in the layers below.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: each handler imports what it runs
    from hailo_ollama_service.config.paths import Paths
    from hailo_ollama_service.host.machine import Host

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def err(message: str) -> None:
    """Print one line on stderr. A last guard: any character left non-printable
    (what the server, /proc or a tool said is escaped where it is quoted) is
    escaped here, so no message can move the cursor or split the line."""
    if not message.isprintable():
        from hailo_ollama_service.untrusted import shown
        message = "".join(c if c.isprintable() else shown(c) for c in message)
    print(f"hailo-ollama-service: {message}", file=sys.stderr, flush=True)


def _paths(args: argparse.Namespace) -> Paths:
    from hailo_ollama_service.config.paths import make_paths
    return make_paths(args.root)


def cmd_render(args: argparse.Namespace) -> int:
    """Render every output; see root.apply."""
    from hailo_ollama_service.root.apply import apply
    result = apply(_paths(args), args.keep_last_good, args.try_restart,
                   report=lambda line: print(line, flush=True))
    for warning in result.warnings:
        err(f"warning: {warning}")
    if result.error:
        err(f"error: {result.error}")
    if not result.changed:
        print("unchanged")
    return EXIT_OK


def cmd_sync_models(args: argparse.Namespace) -> int:
    """The service user's step: models/{manifests,blob} and the manifest mirror.

    As the service user only (``serve`` runs it at every start, inside the
    sandbox); refused as root, see user.models.sync_here. Applies the kiosk
    allowlist in ``$HAILO_OLLAMA_SERVICE_MODELS`` as ``serve`` does (unset:
    every model; the next start applies the unit's own); an invalid value
    is one line and exit 1.
    """
    import os

    from hailo_ollama_service.constants import MODELS_ENV
    from hailo_ollama_service.user import models
    from hailo_ollama_service.user.serve import allowed_models
    allowed, unfit = allowed_models(os.environ.get(MODELS_ENV))
    if unfit:
        err(f"error: {unfit}")
        return EXIT_FAIL
    changed, warnings, error = models.sync_here(_paths(args), allowed)
    for line in changed:
        print(f"changed: {line}", flush=True)
    for warning in warnings:
        err(f"warning: {warning}")
    if error:
        err(f"error: {error}")
        return EXIT_FAIL
    if not changed:
        print("unchanged")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """The unit's main process; see user.serve.serve (returns only on failure)."""
    from hailo_ollama_service.user import serve
    return serve.serve(args.root or "/")


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the effective settings, one file, or one KEY=VALUE."""
    from pathlib import Path

    from hailo_ollama_service.config import load
    if args.value:
        load.parse_assignment(args.value)
    elif args.file:
        load.read_layer(Path(args.file))
    else:
        load.load(_paths(args))
    print("ok")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    """Print every effective value and where it came from."""
    from hailo_ollama_service.config import load
    from hailo_ollama_service.config.generate import debconf_text
    from hailo_ollama_service.config.schema import SETTINGS, yaml_scalar
    paths = _paths(args)
    effective = load.load(paths)
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
    from hailo_ollama_service.config import load
    values = dict(load.parse_assignment(item) for item in args.assignments)
    text = load.layer_yaml(values, "Answers given to debconf (install, dpkg-reconfigure, preseed).\n"
                               "Written by the package; change them with: sudo dpkg-reconfigure "
                               "hailo-ollama-service\nSettings in /etc/hailo/hailo-ollama.yaml win over "
                               "these.")
    load.parse_layer(text, "debconf answers")
    sys.stdout.write(text)
    return EXIT_OK


def _endpoint(args: argparse.Namespace) -> tuple[str, int, str]:
    """Return (host, port, URL) of the API as last rendered (what the server serves)."""
    from hailo_ollama_service.client import api
    from hailo_ollama_service.config.record import served_values
    values = served_values(_paths(args))
    return (*api.address(values), api.base_url(values))


def cmd_wait_ready(args: argparse.Namespace) -> int:
    """Wait until the API answers; exit 0 when it does, 1 on timeout (see probe.report_wait)."""
    from hailo_ollama_service import probe
    host, port, _url = _endpoint(args)
    return probe.report_wait(host, port, args.timeout, args.pid, args.quiet)


def cmd_preflight(args: argparse.Namespace) -> int:
    """Print postinst's warnings; always succeeds."""
    from hailo_ollama_service.host import machine
    try:
        _host, port, _url = _endpoint(args)
    except Exception as error:  # invalid settings: render reports them
        err(f"warning: {error}")
        return EXIT_OK
    for warning in machine.preflight(port, _paths(args).root):
        err(f"warning: {warning}")
    return EXIT_OK


def cmd_postinst_report(args: argparse.Namespace) -> int:
    """Wait (bounded) for the API and print the outcome; always succeeds."""
    from hailo_ollama_service.client import api
    hint = "see: journalctl -u hailo-ollama.service -n 100 --no-pager"
    try:
        host, port, url = _endpoint(args)
    except Exception as error:
        err(f"warning: {error}; {hint}")
        return EXIT_OK
    from hailo_ollama_service.host import machine
    if machine.port_problem(port, _paths(args).root):  # preflight named the program: no use waiting
        err(f"warning: hailo-ollama cannot answer on {url} while another program holds port {port}; {hint}")
        return EXIT_OK
    found = api.wait_ready(host, port, args.timeout)
    if found is not None:
        from hailo_ollama_service.untrusted import shown
        print(f"hailo-ollama is running: {url} (API version {shown(found)})")
    else:
        err(f"warning: hailo-ollama did not answer on {url} within {args.timeout:g} s; {hint}")
    return EXIT_OK


def cmd_warmup(args: argparse.Namespace) -> int:
    """Pull warmup.model if set and missing, then load it with a tiny chat."""
    from hailo_ollama_service.config.record import served_values
    from hailo_ollama_service.user import warmup
    values = served_values(_paths(args))
    return warmup.run(values, log=lambda line: print(line, flush=True))


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print (or write atomically to --output) the Prometheus exposition."""
    from hailo_ollama_service.host import metrics
    text = metrics.exposition(metrics.collect(_host(args)))
    if args.output:
        from pathlib import Path

        from hailo_ollama_service.fs.atomic import write_atomic
        write_atomic(Path(args.output), text.encode(), 0o644)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_metrics_publish(args: argparse.Namespace) -> int:
    """Root's step: copy the unprivileged step's metrics into node_exporter's directory."""
    from pathlib import Path

    from hailo_ollama_service.root import publish
    target = _paths(args).root / args.to.lstrip("/")
    if args.remove:
        publish.unpublish(target)
    else:
        publish.publish(Path(args.source), target)
    return EXIT_OK


def cmd_keep_warm(args: argparse.Namespace) -> int:
    """Load warmup.model with keep_alive -1 (hailo-ollama-keepwarm.timer); see keepwarm.run."""
    from hailo_ollama_service.config.record import served_values
    from hailo_ollama_service.user import keepwarm
    paths = _paths(args)
    return keepwarm.run(served_values(paths), lambda line: print(line, flush=True), paths.keep_state)


def _host(args: argparse.Namespace) -> Host:
    from hailo_ollama_service.host.machine import Host
    return Host(_paths(args))


def cmd_verify(args: argparse.Namespace) -> int:
    """Check unit, API, socket and models; exit 1 on any failure."""
    from hailo_ollama_service.host import doctor, report
    found = doctor.verify(_host(args))
    sys.stdout.write(report.report_text(found))
    if any(c.status == "fail" for c in found):
        err("verification failed; see: journalctl -u hailo-ollama.service -n 100 --no-pager")
        return EXIT_FAIL
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run every check; exit 1 when one fails."""
    from hailo_ollama_service.host import doctor, report
    found = doctor.diagnose(_host(args))
    if args.json:
        print(json.dumps(report.report_json(found), indent=2))
    else:
        sys.stdout.write(report.report_text(found))
    return EXIT_FAIL if any(c.status == "fail" for c in found) else EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull a model with progress."""
    from hailo_ollama_service.client import pull
    from hailo_ollama_service.config.record import served_values
    values = served_values(_paths(args))
    progress = pull.Progress(sys.stdout, sys.stdout.isatty())
    try:
        pull.pull(values, args.model, progress)
    except pull.PullError as error:
        err(f"error: {error}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        err("interrupted; upstream 5.1 stops when the client of a pull goes away, and systemd starts it again "
             "(a partial download is discarded)")
        return 130
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Time to first token and tokens/s, median of N runs."""
    from hailo_ollama_service.client import bench
    from hailo_ollama_service.config.record import served_values
    from hailo_ollama_service.host import machine
    paths = _paths(args)
    values = served_values(paths)
    host = machine.Host(paths)
    try:
        return bench.bench(values, args.model or "", args.runs, lambda: machine.soc_temperature(host),
                           lambda line: print(line, flush=True))
    except bench.BenchError as error:
        err(f"error: {error}")
        return EXIT_FAIL


def cmd_debconf_questions(args: argparse.Namespace) -> int:
    """Print ``question key priority`` per debconf question, in the order asked."""
    from hailo_ollama_service.config.schema import SETTINGS
    for setting in SETTINGS:
        if setting.question:
            print(f"{setting.question} {setting.key} {setting.priority}")
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """``keys add NAME [--admin] [--sha256 HEX]``, ``keys list``, ``keys revoke NAME`` (root only).

    After a change the access front's key map is rendered again and the
    front reloaded (running streams finish). A new key is printed once, on
    stdout, and nothing else is.
    """
    import os

    from hailo_ollama_service.config import load
    from hailo_ollama_service.root import keys
    from hailo_ollama_service.root.apply import apply
    action, name = args.action, args.name
    wanted = {"add": True, "revoke": True, "list": False}
    if action not in wanted or bool(name) != wanted[action] or ((args.admin or args.sha256) and action != "add"):
        err("usage: hailo-ollama-service keys add NAME [--admin] [--sha256 HEX] | keys list | keys revoke NAME")
        return EXIT_USAGE
    if os.geteuid() != 0 and not args.root:
        err("error: the API keys are root's: run it with sudo")
        return EXIT_FAIL
    paths = _paths(args)
    try:
        if action == "list":
            for key in keys.load(paths):
                print(f"{key.name}\t{key.role}\t{key.created}\tsha256:{key.sha256[:12]}")
            return EXIT_OK
        if action == "revoke":
            keys.revoke(paths, name)
            changed = True
        else:
            new, changed = keys.add(paths, name, args.admin, args.sha256)
    except keys.KeyError_ as error:
        err(f"error: {error}")
        return EXIT_FAIL
    if changed:
        result = apply(paths, True, True, report=lambda line: None)
        for warning in result.warnings:
            err(f"warning: {warning}")
        if result.error:
            err(f"error: {result.error}")
    if action == "add" and new is not None:
        print(new, flush=True)
    elif action == "add":
        print(f"{'added' if changed else 'unchanged'} {name}", flush=True)
    else:
        print(f"revoked {name}", flush=True)
    try:
        enabled = load.load(paths).values["access.enabled"]
    except load.ConfigError:
        enabled = True
    if not enabled:
        err("note: access is off, so the API takes no keys yet: set access.enabled in /etc/hailo/hailo-ollama.yaml")
    return EXIT_OK
