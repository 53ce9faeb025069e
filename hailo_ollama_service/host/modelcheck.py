"""Doctor's checks of models: what the server lists and pulled, and whether it offers ``warmup.model``.

Both take the lists that doctor's API check read from the server (bounded
in time and bytes; hostile, so every name is escaped before it is quoted).
A ``warmup.model`` named for another Hailo release (5.2 renamed and dropped
models, config.renames) fails here with what this server offers instead,
rather than in the warm-up's log at the next boot.
"""

from __future__ import annotations

from typing import Any

from hailo_ollama_service.config import renames
from hailo_ollama_service.host import manifests
from hailo_ollama_service.host.machine import Host
from hailo_ollama_service.host.report import Check
from hailo_ollama_service.untrusted import shown

CHANGE_WARMUP = ("change warmup.model (hailo-ollama-service config shows where it is set; "
                 "sudo dpkg-reconfigure hailo-ollama-service)")


def check_models(host: Host, listed: list[str], pulled: list[str], api_up: bool) -> Check:
    """Are manifests visible to the server and blobs present?"""
    if not api_up:
        count = len(manifests.listed(host.paths))
        return Check("models", "skip", f"API down; {count} manifests in {host.paths.manifests_dir}")
    if not listed:
        return Check("models", "fail", "the server lists no models", "sudo hailo-ollama-service render "
                     "--try-restart (mirrors the manifests of /usr/share/hailo-ollama)")
    if not pulled:
        return Check("models", "warn", f"{len(listed)} models available, none pulled",
                     f"hailo-ollama-service pull {shown(listed[0])}")
    return Check("models", "ok", f"{len(listed)} available, pulled: {', '.join(shown(m, 80) for m in pulled[:20])}"
                 + (f" and {len(pulled) - 20} more" if len(pulled) > 20 else ""))


def check_warmup(values: dict[str, Any] | None, listed: list[str], pulled: list[str], api_up: bool) -> Check:
    """Does the server offer ``warmup.model`` (the model the warm-up pulls and keep-warm keeps loaded)?

    Takes the served settings (None when unknown), the names the server
    lists and those it has pulled, and whether the API answered. Returns
    ``fail`` with config.renames' hint when the server lists models and
    not this one; ``skip`` when that cannot be told. Raises nothing.
    """
    if values is None:
        return Check("warmup", "skip", "settings invalid; warmup.model unknown")
    model = str(values["warmup.model"])
    if not model:
        return Check("warmup", "ok", "no warmup.model set: nothing is pulled or loaded at boot")
    if not api_up or not listed:
        return Check("warmup", "skip", f"warmup.model {shown(model, 80)}: the server lists no models to check it "
                     "against")
    unknown = renames.hint(model, listed)
    if unknown:
        return Check("warmup", "fail", f"warmup.model {unknown}", CHANGE_WARMUP)
    state = "pulled" if model in pulled else "offered, not pulled yet (the warm-up pulls it)"
    return Check("warmup", "ok", f"warmup.model {shown(model, 80)}: {state}")


__all__ = ["check_models", "check_warmup", "CHANGE_WARMUP"]
