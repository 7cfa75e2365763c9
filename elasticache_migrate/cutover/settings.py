"""Several settings of one config file switched together: the main value, ``cutover.extra_values`` and
``cutover.clear_keys`` (backends dotenv and yaml).

An app that finds Redis through Sentinel reads more than one setting (``REDIS_SENTINELS`` + ``REDIS_MASTER_NAME``,
often with ``REDIS_URL`` as the fallback when they are absent). ElastiCache is not a Sentinel, so the switch must
change them all at once: the new file text is computed from the old in one go and written in one atomic rewrite, so
the app never reads a half-switched file. Pure text functions; the backends read and replace the file.

Exact restore: the settings removed (``clear_keys``) are cut out of the file *before* any value is set, and each cut
is remembered as (offset in the original text, the text cut), journaled with the other settings' previous values.
The restore first sets the values back (in place, or removes a setting the switch added: the text is then the
original minus the cuts) and re-inserts the cuts at their offsets in ascending order: the original bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint

__all__ = ["SettingsFile", "Switch", "render_extras", "switched_text", "restored_text"]


@runtime_checkable
class SettingsFile(Protocol):
    """A file backend whose settings can be edited together (dotenv, yaml)."""

    path: Path
    key: str

    def text(self) -> str:
        """The file's text as stored (raises CutoverError when it is missing)."""
        ...

    def get(self, text: str, key: str) -> str | None:
        """The value of ``key`` in ``text`` (None if absent)."""
        ...

    def set(self, text: str, key: str, value: str | None) -> str:
        """``text`` with ``key`` set (None removes it), every other byte kept."""
        ...

    def spans(self, text: str, key: str) -> list[tuple[int, int]]:
        """Where ``key``'s setting sits in ``text`` (whole lines: what removing it cuts), [] if absent."""
        ...

    def replace(self, text: str) -> None:
        """Write ``text`` atomically."""
        ...


@dataclass(frozen=True)
class Switch:
    """The switched file text and what a restore needs (journaled)."""

    text: str
    previous_others: dict[str, str | None]
    cleared: tuple[tuple[int, str], ...]
    no_final_newline: bool = False  # the file's last line had no line break (a setting appended adds one)


def render_extras(plan: MigrationPlan, endpoint: Endpoint) -> dict[str, str]:
    """``cutover.extra_values`` rendered for the new endpoint."""
    scheme = "rediss" if endpoint.tls else "redis"
    return {k: t.format(scheme=scheme, host=endpoint.host, port=endpoint.port)
            for k, t in plan.cutover.extra_values.items()}


def switched_text(f: SettingsFile, text: str, main: str, extras: Mapping[str, str], clear: Sequence[str]) -> Switch:
    """``text`` with ``clear`` cut out, then the main key set to ``main`` and each of ``extras`` set."""
    cuts: list[tuple[int, int]] = []
    for start, end in sorted(span for key in clear for span in f.spans(text, key)):
        if cuts and start < cuts[-1][1]:  # inside a cut already (a nested YAML path)
            continue
        cuts.append((start, end))
    cleared = tuple((start, text[start:end]) for start, end in cuts)
    out = text
    for start, end in reversed(cuts):
        out = out[:start] + out[end:]
    previous = {key: f.get(text, key) for key in extras}
    out = f.set(out, f.key, main)
    for key, value in extras.items():
        out = f.set(out, key, value)
    return Switch(out, previous, cleared, bool(text) and not text.endswith("\n"))


def restored_text(f: SettingsFile, text: str, previous: str | None, previous_others: Mapping[str, str | None],
                  cleared: Sequence[tuple[int, str]], no_final_newline: bool = False) -> str:
    """The inverse of :func:`switched_text`: the values back (absent ones removed), then the cuts re-inserted."""
    out = text
    for key, value in reversed(list(previous_others.items())):
        out = f.set(out, key, value)
    out = f.set(out, f.key, previous)
    for offset, chunk in sorted(cleared):
        if offset > len(out) or (offset and out[offset - 1] != "\n"):
            # the file was edited since the switch: never split a line, put the setting back at the end
            out = out + ("" if not out or out.endswith("\n") else "\n") + chunk
            continue
        out = out[:offset] + chunk + out[offset:]
    if no_final_newline and out.endswith("\n"):
        out = out.removesuffix("\n").removesuffix("\r")
    return out

