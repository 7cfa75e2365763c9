"""Config backend: one field of a JSON secret in AWS Secrets Manager (``{"REDIS_URL": "...", ...}``).

Only that field's text changes: the secret string is edited in place, so every other field keeps its exact
bytes (number spellings, escapes, spacing, order), and a switch followed by a restore gives back the very
same string. The secret's other fields never reach a log or an error message.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["SecretField", "get_field", "set_field"]

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _NotAnObject(ValueError):
    """The secret string is not one JSON object (the message never quotes the secret)."""


class _Member(NamedTuple):
    key: str
    key_start: int
    key_end: int
    value_start: int
    value_end: int


def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]  # matches the empty string at worst


def _members(text: str) -> tuple[int, list[_Member], int]:
    """Where a JSON object's '{' is, its top-level members (spans in ``text``), where its '}' is."""
    opening = _skip(text, 0)
    if text[opening:opening + 1] != "{":
        raise _NotAnObject("not a JSON object")
    members: list[_Member] = []
    i = _skip(text, opening + 1)
    if text[i:i + 1] != "}":
        while True:
            if text[i:i + 1] != '"':
                raise _NotAnObject(f"expected a field name at character {i}")
            key, key_end = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
            j = _skip(text, key_end)
            if text[j:j + 1] != ":":
                raise _NotAnObject(f"expected ':' at character {j}")
            start = _skip(text, j + 1)
            _value, end = _DECODER.raw_decode(text, start)
            members.append(_Member(key, i, key_end, start, end))
            i = _skip(text, end)
            if text[i:i + 1] != ",":
                break
            i = _skip(text, i + 1)
    if text[i:i + 1] != "}" or text[_skip(text, i + 1):]:
        raise _NotAnObject(f"expected ',' or '}}' at character {i}")
    return opening, members, i


def _parse(text: str) -> tuple[dict[str, Any], int, list[_Member], int]:
    try:
        data = json.loads(text)
        opening, members, closing = _members(text)
    except (ValueError, IndexError) as exc:
        raise _NotAnObject(str(exc).split(":", 1)[0]) from None  # json's message names a position, no text
    if not isinstance(data, dict):
        raise _NotAnObject("not a JSON object")
    return data, opening, members, closing


def get_field(text: str, field: str) -> str | None:
    """The string in ``field`` of the JSON object ``text``; None if absent or null.

    Raises:
        ValueError: ``text`` is not a JSON object, or the field holds something other than a string.
    """
    data = _parse(text)[0]
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise _NotAnObject(f"field {field!r} is not a string")
    return value


def _edit(text: str, field: str, value: str | None) -> str:
    """One in-place edit: set the last ``field`` (json.loads keeps the last duplicate), add it, or drop it."""
    _data, opening, members, closing = _parse(text)
    mine = [m for m in members if m.key == field]
    if value is None:
        m = mine[-1]
        idx = members.index(m)
        if idx > 0:  # the previous member's end up to this one's end: ',\n  "field": "..."'
            return text[:members[idx - 1].value_end] + text[m.value_end:]
        if len(members) > 1:  # the first one: up to the next member's name
            return text[:m.key_start] + text[members[1].key_start:]
        return text[:opening + 1] + text[closing:]
    rendered = json.dumps(value, ensure_ascii=False)
    if mine:
        return text[:mine[-1].value_start] + rendered + text[mine[-1].value_end:]
    if not members:
        return f'{text[:opening + 1]}{json.dumps(field)}: {rendered}{text[closing:]}'
    last = members[-1]
    # Copy the file's own layout: the gap before the last member (",\n  " or ", ") and its "key: value" gap.
    gap = text[members[-2].value_end:last.key_start] if len(members) > 1 else "," + text[opening + 1:last.key_start]
    colon = text[last.key_end:last.value_start]
    return f"{text[:last.value_end]}{gap}{json.dumps(field)}{colon}{rendered}{text[last.value_end:]}"


def set_field(text: str, field: str, value: str | None) -> str:
    """``text`` with ``field`` set to ``value`` (None removes it); every other byte stays as it was.

    Raises:
        ValueError: ``text`` is not a JSON object.
    """
    data = _exact(text)
    expected = {k: v for k, v in data.items() if k != field}
    if value is not None:
        expected[field] = value
    out = text
    if value is None:
        while field in _parse(out)[0]:
            out = _edit(out, field, None)
    else:
        out = _edit(out, field, value)
    if _exact(out) != expected:  # never seen; but if the in-place edit meant anything else, refuse it
        raise _NotAnObject("the secret could not be edited in place")
    return out


def _exact(text: str) -> dict[str, Any]:
    """The object with numbers kept as their text, so "every other field unchanged" means to the byte."""
    _parse(text)
    return dict(json.loads(text, parse_float=str, parse_int=str, parse_constant=str))


class SecretField:
    """The app reads its Redis URL from one field of a JSON secret."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.secret_id
        self.secret_id = plan.cutover.secret_id
        self.field = plan.cutover.secret_field
        self.sm: Any = aws_client(plan, "secretsmanager")

    def describe(self) -> str:
        return f"secretsmanager:{self.secret_id}#{self.field}"

    def _secret_string(self) -> str:
        with aws_errors("switch-config", CutoverError, self.describe()):
            try:
                got = self.sm.get_secret_value(SecretId=self.secret_id)
            except self.sm.exceptions.ResourceNotFoundException as exc:
                raise CutoverError(f"secret {self.secret_id} does not exist (or has no current version)",
                                   remedy="fix cutover.secret_id: the secret the app reads must already exist",
                                   step="switch-config") from exc
        if "SecretString" not in got:
            raise CutoverError(f"secret {self.secret_id} holds binary data, not a JSON string",
                               remedy="use a secret whose value is a JSON object of fields", step="switch-config")
        return str(got["SecretString"])

    def _refuse(self, exc: ValueError) -> CutoverError:
        return CutoverError(f"secret {self.secret_id} cannot hold field {self.field}: {exc}",
                            remedy="the secret must be a JSON object whose field is a string (the app's URL); "
                            "fix the secret or cutover.secret_field", step="switch-config")

    def fields(self) -> dict[str, str]:
        """Every top-level string field of the secret (preflight looks for the app's other Redis settings)."""
        try:
            data = json.loads(self._secret_string())
        except ValueError:
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    def read(self) -> str | None:
        try:
            return get_field(self._secret_string(), self.field)
        except _NotAnObject as exc:
            raise self._refuse(exc) from None  # from None: the parser's context may quote the secret

    def write(self, value: str | None) -> None:
        text = self._secret_string()
        try:
            new = set_field(text, self.field, value)
        except _NotAnObject as exc:
            raise self._refuse(exc) from None
        if new == text:
            return
        with aws_errors("switch-config", CutoverError, self.describe()):
            self.sm.put_secret_value(SecretId=self.secret_id, SecretString=new)
