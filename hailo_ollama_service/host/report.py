"""The lines of ``doctor`` and ``verify``: Check, running one safely, the text and JSON reports.

A check reads what the server, /proc and the service user's tree say, all
hostile: one that raises becomes one ``fail`` line naming the exception
(escaped), never a crash of the whole report. Whatever reaches a report is
printable: each check escapes the values it quotes (untrusted.shown), and
the reports escape any non-printable character left, as a last guard.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from hailo_ollama_service.untrusted import shown

JSON_VERSION = 1
STATUSES = ("ok", "warn", "fail", "skip")
T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    id: str
    status: str
    found: str
    fix: str = ""


@dataclass(frozen=True)
class StackCheck(Check):
    """The ``stack`` line, carrying the versions found for ``--json``'s "stack" object."""

    versions: dict[str, Any] = field(default_factory=dict, compare=False)


def failed(check_id: str, err: BaseException) -> Check:
    """Take a check's id and the exception it raised; return its ``fail`` line."""
    return Check(check_id, "fail", f"the check itself failed: {shown(f'{type(err).__name__}: {err}')}",
                 "run with HAILO_OLLAMA_DEBUG=1 to see where, and report it")


def guarded(check_id: str, probe: Callable[..., T], *args: Any,
            on_error: Callable[[Check], T] | None = None) -> T:
    """Run ``probe(*args)``; return its result. When it raises (any Exception,
    RecursionError included), return ``on_error(failed line)``, or the failed
    line itself when no ``on_error`` is given. Raises only what is not an
    Exception (KeyboardInterrupt, SystemExit), or anything when
    $HAILO_OLLAMA_DEBUG is set (to see the traceback)."""
    try:
        return probe(*args)
    except Exception as err:  # one check's bug or hostile input must not end the report
        if os.environ.get("HAILO_OLLAMA_DEBUG"):
            raise
        failure = failed(check_id, err)
        return on_error(failure) if on_error else failure  # type: ignore[return-value]


def printable(text: str) -> str:
    """Take report text; return it with each non-printable character escaped
    (a backslash is left alone, so text already escaped stays as it is)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else shown(c) for c in text)


def _versions(value: Any) -> Any:
    """The stack's versions with every string made printable."""
    if isinstance(value, dict):
        return {printable(str(k)): _versions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_versions(v) for v in value]
    return printable(value) if isinstance(value, str) else value


def report_json(found: list[Check]) -> dict[str, Any]:
    """The stable ``--json`` document (see docs/doctor.md: doctor --json); "stack" is
    the stack check's versions (null when that check did not run)."""
    counts = {status: sum(1 for c in found if c.status == status) for status in STATUSES}
    versions = next((c.versions for c in found if isinstance(c, StackCheck)), None)
    checks = [asdict(Check(c.id, c.status, printable(c.found), printable(c.fix))) for c in found]
    return {"version": JSON_VERSION, "ok": counts["fail"] == 0, "counts": counts,
            "checks": checks, "stack": _versions(versions)}


def report_text(found: list[Check]) -> str:
    """The human report: one line per check, its fix indented below."""
    lines = []
    for check in found:
        lines.append(f"[{check.status.upper():4}] {check.id:<11} {printable(check.found)}")
        if check.fix and check.status in ("warn", "fail"):
            lines.append(f"{'':18}fix: {printable(check.fix)}")
    counts = report_json(found)["counts"]
    lines.append(f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures, {counts['skip']} skipped")
    return "\n".join(lines) + "\n"


__all__ = ["Check", "StackCheck", "STATUSES", "JSON_VERSION", "failed", "guarded", "printable", "report_json",
           "report_text"]
