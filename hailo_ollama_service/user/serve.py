"""The unit's main process: the service user's model step, then upstream's server.

``hailo-ollama.service`` runs ``hailo-ollama-service serve`` as its
``ExecStart=``, as the service user inside the unit's sandbox. It syncs
the model tree (``sync-models``; the stamp's fast path when nothing
changed), then replaces itself with ``/usr/bin/hailo-ollama``: same pid,
so the unit's main process (``$MAINPID``, which ``wait-ready`` probes) is
upstream's server.

It is also the last gate before the server: upstream 5.3 and later fail
open on a missing or invalid ``OLLAMA_HOST`` (0.0.0.0:8000), so ``serve``
refuses to exec it with one, and a kiosk's allowlist
(``$HAILO_OLLAMA_SERVICE_MODELS``, which the mirror applies) that it
cannot read. Kept lean: os and sys only on the fast path.
"""

import errno
import os
import sys

from hailo_ollama_service import stamp
from hailo_ollama_service.constants import MODELS_ENV, SERVER

_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_NAME_CHARS = _ALNUM | frozenset("._/-")
_TAG_CHARS = _ALNUM | frozenset("._-")


class ServeError(Exception):
    """``serve`` cannot go on; the message is one line for the journal."""


def sync_models(root: str, allowed: "list[str]") -> None:
    """The service user's model step (fast path when its stamp matches).

    Takes the root (``--root``) and the kiosk allowlist (model names, empty:
    every model; see allowed_models). Raises ServeError when it fails: the
    unit's start fails, and is retried.
    """
    if stamp.sync_unchanged(root, ",".join(allowed)):
        return
    from hailo_ollama_service.config.paths import make_paths
    from hailo_ollama_service.user import models
    changed, warnings, error = models.sync_here(make_paths(root), allowed)
    for line in changed:
        print(f"changed: {line}", flush=True)
    for warning in warnings:
        print(f"hailo-ollama-service: warning: {warning}", file=sys.stderr, flush=True)
    if error:
        raise ServeError(error)


def _valid_port(text: str) -> bool:
    return text.isdigit() and text.isascii() and len(text) <= 5 and 1 <= int(text) <= 65535


def _valid_name(host: str) -> bool:
    """An IPv4 address or a DNS name: ASCII letters, digits, dots and dashes."""
    return (0 < len(host) <= 253 and host.isascii() and host[0] != "-"
            and all(c.isalnum() or c in ".-" for c in host))


def _valid_part(text: str, chars: "frozenset[str]", limit: int) -> bool:
    return 0 < len(text) <= limit and text[0] in _ALNUM and all(c in chars for c in text)


def valid_model(text: str) -> bool:
    """True for a model name ``name`` or ``name:tag``: the pattern of
    config.schema's ``_MODEL``, checked without ``re`` (serve's fast path)."""
    name, sep, tag = text.partition(":")
    return _valid_part(name, _NAME_CHARS, 128) and (not sep or _valid_part(tag, _TAG_CHARS, 64))


def allowed_models(value: "str | None") -> "tuple[list[str], str | None]":
    """The kiosk allowlist from ``$HAILO_OLLAMA_SERVICE_MODELS``.

    Takes the value as root's render writes it: model names joined by ","
    without spaces (None or empty: every model). Returns (names, None), or
    ([], a one-line reason) when it is anything else.
    """
    if not value:
        return [], None
    names = value.split(",")
    if all(valid_model(name) for name in names):
        return names, None
    shown = value.encode("ascii", "backslashreplace").decode()[:100]
    return [], f"{MODELS_ENV}={shown!r} is not model names (name or name:tag) joined by commas"


def check_listen_address(value: "str | None") -> "str | None":
    """Why ``OLLAMA_HOST`` is unfit to start the server with, or None.

    Upstream 5.3 and later listen on 0.0.0.0:8000 when ``OLLAMA_HOST`` is
    unset, empty or invalid (a scheme makes it invalid), so the package
    fails closed: only ``host:port`` or ``[ipv6]:port`` passes. Takes the
    value (None when unset); returns a one-line reason or None.
    """
    if not value:
        return "OLLAMA_HOST is unset or empty"
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        ok = bool(sep) and bool(host) and all(c in "0123456789abcdefABCDEF:." for c in host) and ":" in host
    else:
        host, sep, port = value.rpartition(":")
        ok = bool(sep) and _valid_name(host)
    if ok and _valid_port(port):
        return None
    shown = value.encode("ascii", "backslashreplace").decode()[:100]
    return f"OLLAMA_HOST={shown!r} is not host:port or [ipv6]:port"


def serve(root: str = "/", environ: "dict[str, str] | None" = None) -> int:
    """Sync the models, then exec the server. Returns only on failure.

    Takes the root (``--root``: the server is ROOT/usr/bin/hailo-ollama) and
    the environment the server gets (default: this process's). Refuses to
    run as root (this is the service user's step), refuses an
    ``OLLAMA_HOST`` that upstream would replace with 0.0.0.0:8000 (see
    check_listen_address) and an allowlist it cannot read (a kiosk must not
    fall back to offering every model; see allowed_models). Returns 1 after
    printing one line on failure.
    """
    environ = dict(os.environ if environ is None else environ)
    server = os.path.join(root, SERVER.lstrip("/"))
    try:
        if os.geteuid() == 0:
            raise ServeError("serve runs as the service user (hailo-ollama.service's ExecStart=), not as root")
        unfit = check_listen_address(environ.get("OLLAMA_HOST"))
        if unfit:
            raise ServeError(f"{unfit}; not starting, since upstream would then listen on 0.0.0.0:8000 "
                             "(sudo hailo-ollama-service render writes it)")
        allowed, unfit = allowed_models(environ.get(MODELS_ENV))
        if unfit:
            raise ServeError(f"{unfit}; not starting (sudo hailo-ollama-service render writes it "
                             "from models.allowed)")
        sync_models(root, allowed)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(server, [server], environ)
        except OSError as err:
            hint = " (is hailo-gen-ai-model-zoo installed?)" if err.errno == errno.ENOENT else ""
            raise ServeError(f"{server}: {err.strerror or err}{hint}") from err
    except ServeError as err:
        print(f"hailo-ollama-service: error: {err}", file=sys.stderr, flush=True)
    return 1
