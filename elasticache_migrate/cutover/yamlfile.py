"""Config backend: a YAML config file on the host, the value at a dotted key path (``redis.url``).

The file is edited as text wherever the YAML allows it: the one ``key: value`` line under block mappings is
changed (or added, or removed) and every other byte stays, comments, quoting and blank lines included, so
a switch and its restore leave the file byte-identical. Anything a line edit cannot express (flow
mappings ``{url: …}``, a key missing under an empty mapping, anchors) goes through ruamel.yaml's round
trip, which keeps comments and key order but may re-indent. Either way the result is parsed again and
must mean the old document with only that value changed, or nothing is written. Removing the value
(restoring "absent") also removes the mappings the switch had to create for it. The rewrite is atomic
and keeps the file's mode and owner (see :mod:`elasticache_migrate.cutover.dotenv`).
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elasticache_migrate.cutover.dotenv import read_file, replace_file
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["YamlFile", "get_value", "set_value", "key_span", "flatten"]

_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+=~-]+")


def _load(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("the document is not a mapping")
    return data


def get_value(text: str, key: str) -> str | None:
    """The string at dotted ``key`` in YAML ``text``; None if absent (or null).

    Raises:
        ValueError: not one YAML mapping, or the path leads through or to something else than a string.
    """
    node: Any = _load(text)
    parts = key.split(".")
    for i, part in enumerate(parts):
        if node is None:
            return None
        if not isinstance(node, dict):
            raise ValueError(f"{'.'.join(parts[:i])} is not a mapping")
        node = node.get(part)
    if node is not None and not isinstance(node, str):
        raise ValueError(f"{key} is not a string")
    return node


def _expected(data: dict[str, Any], parts: list[str], value: str | None) -> dict[str, Any]:
    """What the document must mean after the edit (None removes; mappings left empty go too)."""
    out = copy.deepcopy(data)
    chain = [out]
    for part in parts[:-1]:
        nxt = chain[-1].get(part)
        if not isinstance(nxt, dict):
            if value is None:
                return out
            nxt = chain[-1][part] = {}
        chain.append(nxt)
    if value is not None:
        chain[-1][parts[-1]] = value
        return out
    chain[-1].pop(parts[-1], None)
    for parent, part in zip(reversed(chain[:-1]), reversed(parts[:-1]), strict=True):
        if parent[part] == {}:
            del parent[part]
    return out


# ---- the line edit --------------------------------------------------------------------------------------------


def _next_line(text: str, i: int) -> int:
    """Index just past the line that holds index ``i``."""
    nl = text.find("\n", i)
    return len(text) if nl < 0 else nl + 1


def _line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _after(text: str, node: Node) -> int:
    """Where a line inserted after ``node`` (and all it holds) starts."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _after(text, last[1] if isinstance(node, MappingNode) else last)
    end = node.end_mark.index
    return end if end > 0 and text[end - 1] == "\n" else _next_line(text, end)


def _render(value: str, old_style: str | None) -> str:
    """``value`` as a YAML scalar, in the old one's quoting style where that style can hold it."""
    if old_style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if old_style is None and _PLAIN.fullmatch(value) and not value.startswith(("@", "%", "-", ":")) \
            and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _step(root: MappingNode) -> int:
    """The document's indentation step (2 unless a nested block mapping shows another)."""
    todo: list[Node] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, MappingNode) and not node.flow_style:
            for k, v in node.value:
                if isinstance(v, MappingNode) and not v.flow_style and v.value:
                    return max(1, int(v.value[0][0].start_mark.column - k.start_mark.column))
                todo.append(v)
    return 2


def _line_edit(text: str, parts: list[str], value: str | None) -> str | None:
    """The edited text if a line edit can express the change, else None."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None and not isinstance(root, MappingNode):
        return None
    nl = "\r\n" if "\r\n" in text else "\n"
    chain: list[tuple[MappingNode, ScalarNode, Node]] = []  # (mapping, key, value) down the path
    node: Node | None = root
    for part in parts:
        if not isinstance(node, MappingNode):
            break
        pairs = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
        if not pairs:
            break
        chain.append((node, pairs[-1][0], pairs[-1][1]))
        node = pairs[-1][1]
    found = len(chain) == len(parts)
    if value is not None and found:
        _m, key, old = chain[-1]
        span = text[old.start_mark.index:old.end_mark.index]
        if not isinstance(old, ScalarNode) or old.style not in (None, "'", '"') or old.start_mark.line != \
                key.start_mark.line or old.end_mark.line != old.start_mark.line or span[:1] in ("&", "!", "*"):
            return None
        return text[:old.start_mark.index] + _render(value, old.style) + text[old.end_mark.index:]
    if value is not None:  # add the missing keys under the deepest mapping that exists
        if chain and not isinstance(chain[-1][2], MappingNode):
            return None
        parent = chain[-1][2] if chain else root
        if parent is None:
            at, column, step = len(text), 0, 2
        elif not isinstance(parent, MappingNode) or parent.flow_style or not parent.value:
            return None
        else:
            at, column, step = _after(text, parent), parent.value[0][0].start_mark.column, _step(root)
        rest = parts[len(chain):]
        lines = [" " * (column + i * step) + f"{p}:" for i, p in enumerate(rest[:-1])]
        lines.append(" " * (column + (len(rest) - 1) * step) + f"{rest[-1]}: {_render(value, None)}")
        if at == len(text) and text and not text.endswith("\n"):  # the last line has no newline: keep it so
            return text + nl + nl.join(lines)
        return text[:at] + nl.join(lines) + nl + text[at:]
    if not found:
        return text
    level = len(chain) - 1  # remove the pair; then its parents, while they would be left empty
    while level > 0 and len(chain[level][0].value) == 1:
        level -= 1
    mapping, key, val = chain[level]
    start = _line_start(text, key.start_mark.index)
    end = _after(text, val)
    if mapping.flow_style or text[start:key.start_mark.index].strip():
        return None
    if end == len(text) and not text.endswith("\n") and start > 0:  # the last line: its newline goes too
        start -= len(nl) if text[:start].endswith(nl) else 1
    return text[:start] + text[end:]


# ---- ruamel.yaml's round trip, for what a line edit cannot do --------------------------------------------------


def _round_trip(text: str, parts: list[str], value: str | None) -> str:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
    from ruamel.yaml.util import load_yaml_guess_indent

    data, indent, block_seq_indent = load_yaml_guess_indent(text)
    if data is None:
        data = CommentedMap()
    chain = [data]
    for part in parts[:-1]:
        nxt = chain[-1].get(part)
        if not isinstance(nxt, dict):
            if value is None:
                break
            nxt = chain[-1][part] = CommentedMap()
        chain.append(nxt)
    else:
        if value is not None:
            old = chain[-1].get(parts[-1])
            keep = type(old) if isinstance(old, SingleQuotedScalarString | DoubleQuotedScalarString) else str
            chain[-1][parts[-1]] = keep(value)
        else:
            chain[-1].pop(parts[-1], None)
            for parent, part in zip(reversed(chain[:-1]), reversed(parts[:-1]), strict=True):
                if len(parent[part]) == 0:
                    del parent[part]
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long line
    rt.indent(mapping=indent or 2, sequence=indent or 2, offset=block_seq_indent or 0)
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def set_value(text: str, key: str, value: str | None) -> str:
    """``text`` with dotted ``key`` set to ``value`` (None removes it); the rest kept as far as YAML allows.

    Raises:
        ValueError: not one YAML mapping, the path runs through a non-mapping, or no edit could be verified.
    """
    parts = key.split(".")
    data = _load(text)
    if get_value(text, key) == value:
        return text
    want = _expected(data, parts, value)
    for edit in (_line_edit, _round_trip):
        try:
            out = edit(text, parts, value)
        except yaml.YAMLError:
            out = None
        if out is not None and _load(out) == want:
            return out
    raise ValueError(f"could not change {key} without changing anything else in the file")


def key_span(text: str, key: str) -> tuple[int, int] | None:
    """Where the pair at dotted ``key`` sits in ``text`` (its whole lines, value and all), None if absent.

    Raises:
        ValueError: the pair is not on lines of its own in a block mapping (a flow mapping ``{a: 1}``, a pair
            behind ``- `` in a sequence), so it cannot be cut out as lines.
    """
    node: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    pair: tuple[MappingNode, Node, Node] | None = None
    for part in key.split("."):
        if not isinstance(node, MappingNode):
            return None
        pairs = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
        if not pairs:
            return None
        pair = (node, pairs[-1][0], pairs[-1][1])
        node = pair[2]
    assert pair is not None
    mapping, k, v = pair
    start = _line_start(text, k.start_mark.index)
    if mapping.flow_style or text[start:k.start_mark.index].strip():
        raise ValueError(f"{key} is not on lines of its own in a block mapping: it cannot be removed as lines")
    return start, _after(text, v)


def flatten(text: str) -> dict[str, str]:
    """Every scalar of a YAML mapping by dotted path (sequence items as ``path.0``), as text; {} if not a mapping."""
    try:
        data = _load(text)
    except ValueError:
        return {}
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        elif value is not None:
            out[prefix] = str(value)

    walk("", data)
    return out


class YamlFile:
    """The app reads its Redis URL from a YAML file on this host."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.yaml_path
        self.path = Path(plan.cutover.yaml_path).expanduser()
        self.key = plan.cutover.yaml_key

    def describe(self) -> str:
        return f"file:{self.path}#{self.key}"

    def _text(self) -> str:
        try:
            return read_file(self.path)
        except FileNotFoundError as exc:
            raise CutoverError(f"YAML file {self.path} does not exist",
                               remedy="fix cutover.yaml_path (the file the app reads)", step="switch-config") from exc

    def _refuse(self, exc: ValueError) -> CutoverError:
        return CutoverError(f"{self.describe()}: {exc}",
                            remedy="fix cutover.yaml_key (a dotted path to a string under mappings) or the file",
                            step="switch-config")

    def read(self) -> str | None:
        try:
            return get_value(self._text(), self.key)
        except ValueError as exc:
            raise self._refuse(exc) from None

    def write(self, value: str | None) -> None:
        text = self._text()
        try:
            new = set_value(text, self.key, value)
        except ValueError as exc:
            raise self._refuse(exc) from None
        if new != text:
            replace_file(self.path, new)

    # several settings at once (elasticache_migrate.cutover.settings)
    def text(self) -> str:
        return self._text()

    def get(self, text: str, key: str) -> str | None:
        try:
            return get_value(text, key)
        except ValueError as exc:
            raise self._refuse(exc) from None

    def set(self, text: str, key: str, value: str | None) -> str:
        try:
            return set_value(text, key, value)
        except ValueError as exc:
            raise self._refuse(exc) from None

    def spans(self, text: str, key: str) -> list[tuple[int, int]]:
        try:
            span = key_span(text, key)
        except (ValueError, yaml.YAMLError) as exc:
            raise self._refuse(ValueError(str(exc))) from None
        return [span] if span else []

    def replace(self, text: str) -> None:
        replace_file(self.path, text)
