"""Read, validate and layer the settings files.

Layers, later wins: the schema's defaults, then every ``*.yaml`` in the
layer directory (``00-debconf.yaml`` is the debconf answers) sorted by name,
then the operator's conffile. Every problem is a ``ConfigError`` whose text
is one line naming the file, the line and the key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from hailo_ollama_service.config.paths import Paths
from hailo_ollama_service.config.schema import BY_KEY, DEFAULTS, SETTINGS, SettingError, Value, cross_check, sections

MAX_BYTES = 1024 * 1024
_ALLOWED_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
}


class ConfigError(Exception):
    """Invalid settings. ``str()`` is the one-line message for the admin."""

    def __init__(self, where: str, message: str, line: int | None = None, key: str | None = None):
        self.where, self.line, self.key, self.message = where, line, key, message
        location = f"{where}:{line}" if line else where
        parts = [p for p in (location, key, message) if p]
        text = ": ".join(parts)
        super().__init__(text)


@dataclass(frozen=True)
class Layer:
    """The settings one file sets: key -> (value, line)."""

    path: Path
    values: dict[str, tuple[Value, int]]


@dataclass(frozen=True)
class Effective:
    """The effective settings: key -> value and key -> where it came from."""

    values: dict[str, Value]
    sources: dict[str, str]

    def __getitem__(self, key: str) -> Value:
        return self.values[key]


class _AliasError(Exception):
    def __init__(self, mark: yaml.Mark):
        super().__init__()
        self.mark = mark


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses aliases, so no "billion laughs" can expand."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose the next node; raise _AliasError at an alias."""
        if self.check_event(yaml.AliasEvent):
            raise _AliasError(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _read_text(path: Path) -> str:
    """Read ``path`` as UTF-8 text no larger than MAX_BYTES.

    Returns the text; raises ConfigError for an unreadable, oversized or
    non-UTF-8 file.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(str(path), f"cannot read: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(str(path), "larger than 1 MiB; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(str(path), f"not valid UTF-8 (byte 0x{data[err.start]:02x})", line) from None


def _compose(text: str, where: str) -> yaml.Node | None:
    """Parse YAML text into a node tree without constructing anything.

    Returns the root node (None for an empty document); raises ConfigError.
    """
    loader = _StrictLoader(text)
    try:
        return loader.get_single_node()
    except _AliasError as err:
        raise ConfigError(where, "YAML aliases (*name) are not allowed here", err.mark.line + 1) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = (err.problem or err.context or "syntax error").strip()
        raise ConfigError(where, f"malformed YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise ConfigError(where, f"malformed YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()


def _scalar(node: yaml.Node, where: str, key: str) -> object:
    """Construct the plain Python value of a scalar node; raise ConfigError."""
    line = node.start_mark.line + 1
    if node.tag not in _ALLOWED_TAGS:
        raise ConfigError(where, f"unsupported YAML tag {node.tag}", line, key)
    if isinstance(node, yaml.MappingNode):
        return {}
    if isinstance(node, yaml.SequenceNode):
        return []
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:
        raise ConfigError(where, f"cannot read value: {err}", line, key) from None


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_name(node: yaml.Node, where: str, prefix: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        raise ConfigError(where, "keys must be plain names", node.start_mark.line + 1, prefix or None)
    return node.value


def parse_layer(text: str, where: str, path: Path | None = None) -> Layer:
    """Validate one settings document.

    Takes the YAML text and the name to use in messages; returns the Layer of
    the keys it sets (validated); raises ConfigError on the first problem.
    """
    root = _compose(text, where)
    values: dict[str, tuple[Value, int]] = {}
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        return Layer(Path(path or where), values)
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise ConfigError(where, f"must be a mapping of settings, not {kind}", root.start_mark.line + 1)
    groups = sections()
    top_names = list(groups)
    seen: set[str] = set()
    for key_node, value_node in root.value:
        name = _key_name(key_node, where, "")
        line = key_node.start_mark.line + 1
        if name not in groups:
            raise ConfigError(where, "unknown setting" + _suggest(name, top_names + list(BY_KEY)), line, name)
        if name in seen:
            raise ConfigError(where, "set twice in this file", line, name)
        seen.add(name)
        if name in BY_KEY:  # a top-level leaf such as main_poll_time_ms
            values[name] = (_validate(name, value_node, where), line)
            continue
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag == "tag:yaml.org,2002:null":
            continue  # "server:" with every key commented out
        members = [s.key.split(".", 1)[1] for s in groups[name]]
        if not isinstance(value_node, yaml.MappingNode):
            raise ConfigError(where, f"must be a mapping of {', '.join(members)}", line, name)
        inner_seen: set[str] = set()
        for sub_key, sub_value in value_node.value:
            sub = _key_name(sub_key, where, name)
            full = f"{name}.{sub}"
            sub_line = sub_key.start_mark.line + 1
            if full not in BY_KEY:
                raise ConfigError(where, "unknown setting" + _suggest(sub, members), sub_line, full)
            if full in inner_seen:
                raise ConfigError(where, "set twice in this file", sub_line, full)
            inner_seen.add(full)
            values[full] = (_validate(full, sub_value, where), sub_line)
    return Layer(Path(path or where), values)


def _validate(key: str, node: yaml.Node, where: str) -> Value:
    raw = _scalar(node, where, key)
    try:
        return BY_KEY[key].check(raw)
    except SettingError as err:
        raise ConfigError(where, str(err), node.start_mark.line + 1, key) from None


def read_layer(path: Path) -> Layer:
    """Read and validate one settings file; raise ConfigError."""
    return parse_layer(_read_text(path), str(path), path)


def layer_files(paths: Paths) -> list[Path]:
    """Return the settings files that exist, lowest precedence first."""
    files: list[Path] = []
    if paths.layer_dir.is_dir():
        files.extend(sorted(p for p in paths.layer_dir.iterdir()
                            if p.name.endswith(".yaml") and not p.name.startswith(".")))
    if paths.conffile.exists():
        files.append(paths.conffile)
    return files


def load(paths: Paths) -> Effective:
    """Compute the effective settings.

    Takes the Paths; returns Effective (sources name the file that set each
    value, or "default"); raises ConfigError for the first invalid file.
    """
    values: dict[str, Value] = dict(DEFAULTS)
    sources = {key: "default" for key in values}
    for path in layer_files(paths):
        layer = read_layer(path)
        for key, (value, _line) in layer.values.items():
            values[key] = value
            sources[key] = str(path)
    conflict = cross_check(values)
    if conflict:
        key, message = conflict
        raise ConfigError(sources[key] if sources[key] != "default" else str(paths.conffile), message, key=key)
    return Effective(values, sources)


def parse_assignment(text: str) -> tuple[str, Value]:
    """Parse ``KEY=VALUE`` as given on a command line or by debconf.

    Returns (key, typed value); raises ConfigError naming the key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError("", f"expected KEY=VALUE, not {text!r}")
    if key not in BY_KEY:
        raise ConfigError("", "unknown setting" + _suggest(key, list(BY_KEY)), key=key)
    try:
        return key, BY_KEY[key].parse_text(raw)
    except SettingError as err:
        raise ConfigError("", str(err), key=key) from None


def layer_yaml(values: dict[str, Value], header: str) -> str:
    """Write settings as a YAML layer grouped by section, schema order.

    Takes key -> value and a comment header; returns the YAML text, which
    ``parse_layer`` reads back to the same values.
    """
    from hailo_ollama_service.config.schema import yaml_scalar

    lines = [f"# {h}".rstrip() for h in header.splitlines()]
    for section, members in sections().items():
        chosen = [s for s in members if s.key in values]
        if not chosen:
            continue
        if len(members) == 1 and members[0].key == section:
            lines.append(f"{section}: {yaml_scalar(members[0], values[section])}")
            continue
        lines.append(f"{section}:")
        for s in chosen:
            lines.append(f"  {s.key.split('.', 1)[1]}: {yaml_scalar(s, values[s.key])}")
    return "\n".join(lines) + "\n"


__all__ = ["ConfigError", "Effective", "Layer", "SETTINGS", "load", "parse_layer", "read_layer",
           "layer_files", "parse_assignment", "layer_yaml"]
