"""Which RDB versions each server writes and each ElastiCache engine loads (pure tables and lookups).

Sources: Redis' ``src/rdb.h`` history (RDB_VERSION per release) and Valkey's; the ElastiCache column is
inferred from the engine each version is built on (AWS publishes no matrix): a loader refuses any RDB
newer than its own (``Can't handle RDB format version N``) and loads every older one.
"""

from __future__ import annotations

__all__ = [
    "VALKEY_MAGIC_VERSION",
    "rdb_version_written_by",
    "max_rdb_loaded_by_engine",
    "engine_loads",
    "lowest_engine_loading",
    "parse_version",
]

VALKEY_MAGIC_VERSION = 80  # the "VALKEY080" header (Valkey 9); no released Redis or ElastiCache loads it

# (flavor, first version of the line) -> RDB version it writes; the highest line <= version applies.
_WRITES: dict[str, list[tuple[tuple[int, int], int]]] = {
    "redis": [((2, 6), 6), ((3, 2), 7), ((4, 0), 8), ((5, 0), 9), ((7, 0), 10), ((7, 2), 11), ((7, 4), 12)],
    "valkey": [((7, 2), 11), ((9, 0), VALKEY_MAGIC_VERSION)],
}

# ElastiCache engine lines and the newest RDB each loads.
_ELASTICACHE_LOADS: dict[str, list[tuple[tuple[int, int], int]]] = {
    "redis": [((4, 0), 8), ((5, 0), 9), ((7, 0), 10)],
    "valkey": [((7, 2), 11)],
}


def parse_version(v: str) -> tuple[int, int]:
    """'7.0.15' -> (7, 0); '7' -> (7, 0)."""
    parts = [int(p) for p in v.strip().split(".")[:2] if p.isdigit()]
    if not parts:
        raise ValueError(f"not a version: {v!r}")
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def _lookup(table: list[tuple[tuple[int, int], int]], version: tuple[int, int]) -> int | None:
    """The value of the highest row whose version is <= version."""
    found = None
    for first, value in table:
        if version >= first:
            found = value
    return found


def rdb_version_written_by(flavor: str, version: str) -> int | None:
    """RDB version a server of ``flavor`` (redis/valkey) and ``version`` writes, None if unknown."""
    return _lookup(_WRITES.get(flavor, []), parse_version(version))


def max_rdb_loaded_by_engine(engine: str, engine_version: str) -> int | None:
    """Newest RDB version ElastiCache ``engine`` ``engine_version`` loads; None if the engine is unknown."""
    return _lookup(_ELASTICACHE_LOADS.get(engine, []), parse_version(engine_version))


def engine_loads(engine: str, engine_version: str, rdb_version: int) -> bool:
    """Whether that ElastiCache engine can be seeded from an RDB of ``rdb_version``."""
    top = max_rdb_loaded_by_engine(engine, engine_version)
    return top is not None and rdb_version <= top


def lowest_engine_loading(rdb_version: int) -> tuple[str, str] | None:
    """The lowest ElastiCache (engine, version line) that loads ``rdb_version``, or None if none does."""
    for engine in ("redis", "valkey"):
        for first, top in _ELASTICACHE_LOADS[engine]:
            if rdb_version <= top:
                return engine, f"{first[0]}.{first[1]}"
    return None
