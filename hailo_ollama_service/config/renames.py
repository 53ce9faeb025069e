"""Hailo's model names across its releases, and the hint for a name a server does not offer.

Hailo 5.2 renamed two models and dropped one; 5.3 added two. A Pi set up
for one release (``warmup.model``, a script's ``pull``) may meet a server of
another, which then knows the name no more (5.1 answers 200 with an error,
5.3 and later 404). ``hint`` turns that into one line that names what the
server offers instead: the other name of a renamed model (both directions:
a 5.1 Pi may be given a 5.4 name), else the near names (difflib, so a typo
is covered too), else the server's list.

The table below is the one place that knows the names. Hailo's own files
spell the new DeepSeek name ``deepseek_r1`` (the manifest folder, hence the
name the server lists) and its notes ``deepseek-r1``: both are kept, and a
hint only ever suggests a name that the server itself listed.

The offered names come from the server and are hostile: every name is
escaped (``untrusted.shown``) and only the first MOST_NAMES of at most
NAME_LIMIT characters are compared, so a huge list cannot make a hint slow.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from hailo_ollama_service.untrusted import shown

# The 5.1 name of a model -> its names from Hailo 5.2 on.
RENAMED: dict[str, tuple[str, ...]] = {
    "qwen2.5-instruct:1.5b": ("qwen2.5:1.5b",),
    "deepseek_r1_distill_qwen:1.5b": ("deepseek_r1:1.5b", "deepseek-r1:1.5b"),
}
RENAMED_IN = "5.2"
# A model Hailo dropped -> the release that dropped it; one it added -> the release that added it.
DROPPED: dict[str, str] = {"llama3.2:3b": "5.2"}
ADDED: dict[str, str] = {"llama3.2:1b": "5.3", "qwen3:1.7b": "5.3"}

MOST_NAMES = 1000   # offered names compared (a hostile list may be long)
NAME_LIMIT = 200    # characters of a name worth comparing
MOST_SHOWN = 12     # names listed in a hint
CLOSE = 0.6         # difflib's cutoff for a near name


def other_names(model: str) -> tuple[str, ...]:
    """Take a model name; return every other name Hailo gave the same model
    (old -> new and new -> old, one table), () for a name never renamed."""
    for old, new in RENAMED.items():
        group = (old, *new)
        if model in group:
            return tuple(name for name in group if name != model)
    return ()


def _names(names: Sequence[str], most: int = MOST_SHOWN) -> str:
    """Names escaped, comma-separated, at most ``most`` of them."""
    shown_names = [shown(name, 80) for name in names[:most]]
    return ", ".join(shown_names) + (f" (and {len(names) - most} more)" if len(names) > most else "")


def _either(names: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``: names escaped."""
    escaped = [shown(name, 80) for name in names]
    return escaped[0] if len(escaped) == 1 else ", ".join(escaped[:-1]) + " or " + escaped[-1]


def _note(model: str, suggested: str) -> str:
    """Why ``suggested`` stands for ``model``: which way Hailo renamed it, or ""."""
    if model in RENAMED and suggested in RENAMED[model]:
        return f" (Hailo {RENAMED_IN} renamed it)"
    if suggested in RENAMED and model in RENAMED[suggested]:
        return f" (its name before Hailo {RENAMED_IN})"
    return ""


def hint(model: str, offered: Sequence[str]) -> str | None:
    """One line for a model the server does not offer, or None.

    Takes the wanted name (from a command line or the settings) and the
    names the server lists (``/hailo/v1/list``; hostile). Returns None when
    ``model`` is offered, or when ``offered`` is empty (the server listed
    nothing, so nothing can be said). Else ``<model>: not offered by this
    server; did you mean <name>?`` with the renamed model's other name or
    the near names, or, for a model Hailo dropped or added and for a name
    with no near one, what the server offers. Every name is escaped. Raises
    nothing.
    """
    names = [name for name in offered[:MOST_NAMES] if isinstance(name, str) and len(name) <= NAME_LIMIT]
    if not names or model in offered:
        return None
    head = f"{shown(model, 80)}: not offered by this server"
    renamed = [name for name in other_names(model) if name in names]
    if renamed:
        return f"{head}; did you mean {_either(renamed)}?{_note(model, renamed[0])}"
    close = difflib.get_close_matches(model, names, n=3, cutoff=CLOSE)
    changed = (f"Hailo {DROPPED[model]} dropped it" if model in DROPPED else
               f"Hailo {ADDED[model]} and later offer it" if model in ADDED else "")
    if changed:
        rest = sorted(set(names) - set(close))
        return f"{head} ({changed}); it offers: {_names(close + rest)}"
    if close:
        return f"{head}; did you mean {_either(close)}?"
    return f"{head}; it offers: {_names(sorted(set(names)))}"


__all__ = ["RENAMED", "RENAMED_IN", "DROPPED", "ADDED", "other_names", "hint"]
