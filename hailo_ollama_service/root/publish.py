"""Root's step of the metrics timer: publish the unprivileged step's file for node_exporter.

``hailo-ollama-metrics.service`` collects as the service user (``host.metrics``)
and then runs ``metrics-publish`` as root (``ExecStartPost=+``): the file
that user wrote is checked line by line against the exposition grammar
below before a byte of it reaches node_exporter's textfile directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from hailo_ollama_service.constants import TEXTFILE_NAME
from hailo_ollama_service.fs import nofollow
from hailo_ollama_service.fs.atomic import WriteError

LIMIT = 256 * 1024
# What publish lets through, line by line (printable ASCII only, no timestamp):
_NAME = r"hailo_ollama_[a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[ !#-\[\]-~]|\\[\\"n])*"'  # printable, \\ \" \n escaped
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN"
_LINE = re.compile(rf"# HELP {_NAME} (?:[ -\[\]-~]|\\[\\n])*"
                   rf"|# TYPE {_NAME} (?:counter|gauge|histogram|summary|untyped)"
                   rf"|{_NAME}(?:\{{{_LABEL}(?:,{_LABEL})*,?\}})? (?:{_NUMBER})")


def publish(source: Path, target_dir: Path, name: str = TEXTFILE_NAME) -> bool:
    """Copy the metrics that the unprivileged step wrote into the textfile directory.

    Runs as root. ``source`` was written by another user, so it is opened
    without following a link, must be a regular file under LIMIT bytes, and
    must be our exposition before a byte of it is published: every line is
    ``# HELP hailo_ollama_NAME text``, ``# TYPE hailo_ollama_NAME type`` or a
    sample ``hailo_ollama_NAME{labels} value`` without a timestamp, every
    byte printable ASCII (0x20-0x7e) but the ``\\n`` that ends each line.
    ``target_dir`` is opened without following a final link and written
    atomically (temp file, rename). Returns True when the file changed;
    raises WriteError (naming file:line; nothing is published) or
    nofollow.Unsafe.
    """
    with nofollow.opened_dir(source.parent) as fd:
        data = nofollow.read_regular(fd, source.name, LIMIT, source.parent)
    if data is None:
        raise WriteError(f"{source}: missing; nothing to publish")
    if not data.endswith(b"\n"):
        raise WriteError(f"{source}: incomplete (no final newline); nothing published")
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        odd = next((byte for byte in line if not 0x20 <= byte <= 0x7e), None)
        if odd is not None:
            raise WriteError(f"{source}:{number}: not a hailo_ollama_ metric line (byte {odd:#04x} is not "
                             "printable ASCII); nothing published")
        if not _LINE.fullmatch(line.decode("ascii")):
            raise WriteError(f"{source}:{number}: not a hailo_ollama_ metric line; nothing published")
    with nofollow.opened_dir(target_dir) as fd:
        return nofollow.write_at(fd, name, data, 0o644, target_dir)


def unpublish(target_dir: Path, name: str = TEXTFILE_NAME) -> bool:
    """Remove our file from the textfile directory (package removal), opening
    the directory without following a final link; True when it was there."""
    try:
        with nofollow.opened_dir(target_dir) as fd:
            return nofollow.unlink_at(fd, name)
    except FileNotFoundError:
        return False
