"""One key on two servers: its state as read, made comparable across servers and encodings, and the difference.

Pure: no I/O. A value is normalised only where servers may legitimately differ (a set's or hash's members
come in hash-table order; a zset score may be printed differently by another version; stream consumer
groups are reported in another shape by older versions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "KeyState",
    "Mismatch",
    "compare_key",
    "show_key",
    "brief",
    "as_text",
    "pairs",
    "groups",
    "entries",
    "scored",
    "NORMALISED_AS_READ",
    "normalise",
]


class KeyState(NamedTuple):
    """A key as read from one server: type, normalised value, PTTL (-1 none, -2 absent).

    ``value`` is None for a collection too large to hold (compared in chunks) — then ``size`` says how big.
    Its type depends on the key's: bytes (a string, a DUMP), a list (list), a frozenset (set), a list of
    (member, score) pairs (zset), a dict (hash), a pair of entries and consumer groups (stream).
    """

    type: str
    value: Any
    pttl: int
    size: int = 0


@dataclass(frozen=True)
class Mismatch:
    """One difference between source and target."""

    db: int
    key: str
    kind: str        # missing | type | value | ttl | extra | probe | source-changed
    detail: str


def show_key(key: bytes) -> str:
    """A key as shown in a report: decoded with escapes, at most 80 characters."""
    s = key.decode("utf-8", "backslashreplace")
    return s if len(s) <= 80 else s[:77] + "..."


def brief(v: Any) -> str:
    """A value as shown in a report: its repr, at most 120 characters."""
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def compare_key(db: int, key: bytes, src: KeyState, tgt: KeyState, tolerance_ms: int) -> Mismatch | None:
    """The difference between one key's states on source and target, or None if they agree.

    A key that expires on one side while verify runs (TTL within the tolerance) is not a difference.
    Values of chunked collections (``value`` None) are compared separately; here only their sizes.
    """
    name = show_key(key)
    if src.type == "none":
        return None if tgt.type == "none" or 0 <= tgt.pttl <= tolerance_ms else Mismatch(
            db, name, "extra", f"on target only ({tgt.type})")
    if tgt.type == "none":
        if 0 <= src.pttl <= tolerance_ms:
            return None  # expired on the target a moment earlier
        return Mismatch(db, name, "missing", f"{src.type} missing on target")
    if src.type != tgt.type:
        return Mismatch(db, name, "type", f"source {src.type}, target {tgt.type}")
    if src.size != tgt.size:
        return Mismatch(db, name, "value", f"{src.type} of {src.size} elements on source, {tgt.size} on target")
    if src.value != tgt.value:
        return Mismatch(db, name, "value", f"source {brief(src.value)} != target {brief(tgt.value)}")
    if (src.pttl < 0) != (tgt.pttl < 0):
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl}, target PTTL {tgt.pttl}")
    if src.pttl >= 0 and abs(src.pttl - tgt.pttl) > tolerance_ms:
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl} ms, target {tgt.pttl} ms (> {tolerance_ms} ms)")
    return None


# ------------------------------------------------------------------------------------------ normalisation

def as_text(x: Any) -> str:
    """A reply element as text."""
    return x.decode() if isinstance(x, bytes) else str(x)


def pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    """A flat [k1, v1, k2, v2, …] reply as [(k1, v1), (k2, v2), …]."""
    return list(zip(flat[::2], flat[1::2], strict=False))


def groups(raw: Any) -> list[tuple[Any, ...]]:
    """Consumer groups of a stream, comparable across versions (name, consumers, pending, last id)."""
    out = []
    for g in raw or []:
        d = {as_text(k): v for k, v in (pairs(g) if isinstance(g, list) else dict(g).items())}
        out.append((d.get("name"), d.get("consumers"), d.get("pending"), d.get("last-delivered-id")))
    return sorted(out, key=repr)


def entries(raw: Any) -> list[tuple[Any, Any]]:
    """Stream entries as (id, sorted field pairs)."""
    return [(eid, tuple(sorted(pairs(fields) if isinstance(fields, list) else fields.items())))
            for eid, fields in raw or []]


def scored(flat: list[Any]) -> list[tuple[Any, float]]:
    """A WITHSCORES reply as (member, score) pairs: scores compared as numbers, however a version prints them."""
    return [(m, float(sc)) for m, sc in pairs(flat)]


NORMALISED_AS_READ = frozenset({"set", "hash"})
"""Types normalised as soon as they are read; the other types only when they differ as read."""


def normalise(t: str, raw: list[Any]) -> Any:
    """Make a fetched value comparable across servers and encodings (``raw``: the replies of its reads)."""
    if t == "set":
        return frozenset(raw[0])
    if t == "zset":
        return scored(raw[0])
    if t == "hash":
        return dict(pairs(raw[0]))
    if t == "stream":
        return (entries(raw[0]), groups(raw[1]))
    return raw[0]
