"""CONFIG GET / SET of single values on the source, in one place: a server whose CONFIG is renamed, disabled or
not granted answers with an error reply (redis-py's ``ResponseError``), which means "unknown" here; a lost
connection is not that, and propagates (map it with :func:`~elasticache_migrate.source.connection.redis_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

__all__ = ["config_get", "config_get_many", "text"]


def text(v: Any) -> str:
    """A reply value as text (redis-py gives bytes with decode_responses=False)."""
    return v.decode() if isinstance(v, bytes) else str(v)


def config_get(r: redis.Redis, name: str) -> str | None:
    """The value of one config parameter; None when the server refuses CONFIG GET or has no such parameter."""
    try:
        got = dict(r.config_get(name))
    except redis.ResponseError:  # renamed, disabled, NOPERM: unknown
        return None
    for k, v in got.items():
        if text(k) == name:
            return None if v is None else text(v)
    return None


def config_get_many(r: redis.Redis, names: Iterable[str]) -> dict[str, str | None]:
    """:func:`config_get` for each name."""
    return {name: config_get(r, name) for name in names}
