"""Text and JSON that come from the server, /proc or the service user's tree.

The package treats all three as hostile: the server is network-facing C++
that can be taken over, ``/proc/PID/comm`` is whatever a process named
itself, and the service user can write anything into its own tree. This
module is the one place that makes such input safe to print (``shown``) and
to parse (``loads``). Imports nothing but ``re`` and ``json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

SHOWN_LIMIT = 200
JSON_DEPTH = 32
# One left-to-right pass: a string (its closing quote optional, so an
# unterminated one ends the scan instead of backtracking) or a bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """Return ``value`` as text safe for a terminal and for one log line.

    Takes any object (its ``str()``; bytes are decoded as UTF-8 with
    replacement) and a length limit. Every character that is not printable
    (C0 and C1 controls such as ESC, DEL, line and paragraph separators,
    bidi overrides and other format characters) becomes a visible escape
    (``\\x1b``, ``\\u202e``); a backslash is doubled so that an escape
    cannot be forged. Text over ``limit`` characters is cut and ends in
    ``...``. Raises nothing.
    """
    text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
    out = []
    size = 0
    for char in text:
        if char == "\\":
            piece = "\\\\"
        elif char.isprintable():
            piece = char
        elif ord(char) < 0x100:
            piece = f"\\x{ord(char):02x}"
        elif ord(char) < 0x10000:
            piece = f"\\u{ord(char):04x}"
        else:
            piece = f"\\U{ord(char):08x}"
        size += len(piece)
        if size > limit:
            out.append("...")
            break
        out.append(piece)
    return "".join(out)


def depth(data: bytes, stop: int = 1 << 30) -> int:
    """Return the deepest nesting of arrays and objects in JSON ``data``.

    Brackets inside strings do not count; the text need not be valid JSON.
    Stops counting (and returns) once the nesting passes ``stop``.
    """
    deepest = level = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop:
                    break
        elif token in (b"]", b"}"):
            level = max(0, level - 1)
    return deepest


def loads(data: bytes | str, limit: int, max_depth: int = JSON_DEPTH) -> Any:
    """Parse untrusted JSON with a size and a nesting bound.

    Takes the bytes (or text), the most bytes accepted and the deepest
    nesting accepted. Returns the decoded value. Raises ValueError (with a
    one-line reason) for data over ``limit`` bytes, nested deeper than
    ``max_depth``, or not valid JSON; never RecursionError.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > limit:
        raise ValueError(f"over {limit} bytes")
    found = depth(raw, max_depth)
    if found > max_depth:
        raise ValueError(f"nested {found} levels deep (at most {max_depth})")
    try:
        return json.loads(raw)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ValueError("nested too deep") from None
    except ValueError as err:
        raise ValueError(f"not valid JSON ({shown(err, 80)})") from None


__all__ = ["shown", "loads", "depth", "SHOWN_LIMIT", "JSON_DEPTH"]
