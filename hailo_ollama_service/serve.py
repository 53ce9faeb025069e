"""The unit's main process: the service user's model step, then upstream's server.

``hailo-ollama.service`` runs ``hailo-ollama-service serve`` as its
``ExecStart=``, as the service user inside the unit's sandbox. It syncs
the model tree (``sync-models``; the stamp's fast path when nothing
changed), then replaces itself with ``/usr/bin/hailo-ollama``: same pid,
so the unit's main process (``$MAINPID``, which ``wait-ready`` probes) is
upstream's server.

Until 1.2.0 the model step was an unprivileged ``ExecStartPre=`` of its
own: one more process, paying for systemd to set up the sandbox again
(about 30 ms here, more on a Pi). Kept lean: os and sys only on the fast
path.
"""

from __future__ import annotations

import errno
import os
import sys

from hailo_ollama_service import fastpath

SERVER = "/usr/bin/hailo-ollama"


class ServeError(Exception):
    """``serve`` cannot go on; the message is one line for the journal."""


def sync_models(root: str) -> None:
    """The service user's model step (fast path when its stamp matches).

    Takes the root (``--root``). Raises ServeError when it fails: the
    unit's start fails, and is retried.
    """
    if fastpath.sync_unchanged(root):
        return
    from hailo_ollama_service import paths, state
    changed, warnings, error = state.sync_as_service_user(paths.make_paths(root))
    for line in changed:
        print(f"changed: {line}", flush=True)
    for warning in warnings:
        print(f"hailo-ollama-service: warning: {warning}", file=sys.stderr, flush=True)
    if error:
        raise ServeError(error)


def serve(root: str = "/", environ: "dict[str, str] | None" = None) -> int:
    """Sync the models, then exec the server. Returns only on failure.

    Takes the root (``--root``: the server is ROOT/usr/bin/hailo-ollama) and
    the environment the server gets (default: this process's). Refuses to
    run as root: this is the service user's step. Returns 1 after printing
    one line on failure.
    """
    environ = dict(os.environ if environ is None else environ)
    server = os.path.join(root, SERVER.lstrip("/"))
    try:
        if os.geteuid() == 0:
            raise ServeError("serve runs as the service user (hailo-ollama.service's ExecStart=), not as root")
        sync_models(root)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(server, [server], environ)
        except OSError as err:
            raise ServeError(f"{server}: {err.strerror or err}"
                             + (" (is hailo-gen-ai-model-zoo installed?)" if err.errno == errno.ENOENT else "")) from err
    except ServeError as err:
        print(f"hailo-ollama-service: error: {err}", file=sys.stderr, flush=True)
    return 1
