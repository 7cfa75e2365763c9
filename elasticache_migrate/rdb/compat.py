"""Which RDB versions each server writes and each ElastiCache engine loads (pure tables and lookups).

Sources: Redis' ``src/rdb.h`` history (RDB_VERSION per release) and Valkey's; the ElastiCache column is
inferred from the engine each version is built on (AWS publishes no matrix): a loader refuses any RDB
newer than its own (``Can't handle RDB format version N``) and loads every older one.

ElastiCache for Valkey 9.0 and 9.1 load ``VALKEY080`` (what Valkey 9 writes) and, like every Valkey, ``REDIS``
versions up to 11; nothing on ElastiCache loads ``REDIS`` 12-79 (Redis >= 7.4).

`server_loads` / `server_refusal` are the verdict for a real server, checked against the servers themselves
(tests/functional/test_rdb_corpus.py loads dumps written by Redis 3.0.5 … Valkey 9.1.2 into each of them):

- every server loads every older ``REDIS`` version (RDB 6 loads in Valkey 9.1; headers down to 1 too);
- a newer ``REDIS`` version is refused with ``Can't handle RDB format version N``;
- Valkey (default ``rdb-version-check strict``) also refuses ``REDIS`` 12–79, the range Redis >= 7.4 uses,
  even Valkey 9.1 whose own version is 80, and ``REDIS`` >= 80 (Valkey writes those with its own magic);
- ``VALKEY080`` loads only in Valkey >= 9; Valkey 8.1 knows the magic but refuses the version (``Can't handle
  RDB format version 80``); Redis of any version stops at ``Wrong signature trying to load DB from file``.

Not modelled: ``rdb-version-check relaxed`` (Valkey 8.1 then takes ``VALKEY081`` but still refuses ``REDIS0012``;
Valkey 9.1 then takes ``REDIS0012``–``REDIS0079`` and ``VALKEY081``; both may still fail on unknown types).
"""

from __future__ import annotations

from elasticache_migrate.state import version_tuple

__all__ = [
    "VALKEY_MAGIC_VERSION",
    "FOREIGN_RDB_VERSIONS",
    "magic_of",
    "rdb_version_written_by",
    "max_rdb_loaded_by_engine",
    "engine_loads",
    "lowest_engine_loading",
    "parse_version",
    "server_loads",
    "server_refusal",
    "elasticache_loads",
]

VALKEY_MAGIC_VERSION = 80  # the "VALKEY080" header (Valkey 9); no released Redis or ElastiCache loads it
FOREIGN_RDB_VERSIONS = range(12, 80)  # REDIS versions of Redis >= 7.4, which Valkey refuses (strict check)

# (flavor, first version of the line) -> RDB version it writes; the highest line <= version applies.
_WRITES: dict[str, list[tuple[tuple[int, int], int]]] = {
    "redis": [((2, 6), 6), ((3, 2), 7), ((4, 0), 8), ((5, 0), 9), ((7, 0), 10), ((7, 2), 11), ((7, 4), 12)],
    "valkey": [((7, 2), 11), ((9, 0), VALKEY_MAGIC_VERSION)],
}

# ElastiCache engine lines and the newest RDB each loads.
_ELASTICACHE_LOADS: dict[str, list[tuple[tuple[int, int], int]]] = {
    "redis": [((4, 0), 8), ((5, 0), 9), ((7, 0), 10)],
    "valkey": [((7, 2), 11), ((9, 0), VALKEY_MAGIC_VERSION)],
}


def parse_version(v: str) -> tuple[int, int]:
    """'7.0.15' -> (7, 0); '7' -> (7, 0)."""
    if not v.strip()[:1].isdigit():
        raise ValueError(f"not a version: {v!r}")
    major, minor, _patch = version_tuple(v.strip())
    return major, minor


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


def magic_of(rdb_version: int) -> str:
    """The magic a server writing ``rdb_version`` puts in front: ``VALKEY`` from 80 (Valkey 9), ``REDIS`` below."""
    return "VALKEY" if rdb_version >= VALKEY_MAGIC_VERSION else "REDIS"


def engine_loads(engine: str, engine_version: str, rdb_version: int) -> bool:
    """Whether that ElastiCache engine can be seeded from an RDB of ``rdb_version`` as its writer writes it
    (80 and up with the ``VALKEY`` magic, see `magic_of`)."""
    return elasticache_loads(engine, engine_version, magic_of(rdb_version), rdb_version)


def lowest_engine_loading(rdb_version: int) -> tuple[str, str] | None:
    """The lowest ElastiCache (engine, version line) that loads ``rdb_version`` (as `engine_loads` reads it), or
    None if none does."""
    for engine in ("redis", "valkey"):
        for first, _top in _ELASTICACHE_LOADS[engine]:
            line = f"{first[0]}.{first[1]}"
            if engine_loads(engine, line, rdb_version):
                return engine, line
    return None


def _check_header(magic: str, rdb_version: int) -> str:
    """Normalise ``magic`` and reject headers no server writes (as `elasticache_migrate.rdb.read_header` does)."""
    magic = magic.upper()
    if magic not in ("REDIS", "VALKEY"):
        raise ValueError(f"unknown RDB magic {magic!r}: expected REDIS or VALKEY")
    if rdb_version < 1:
        raise ValueError(f"RDB version {rdb_version} does not exist")
    if magic == "VALKEY" and rdb_version < VALKEY_MAGIC_VERSION:
        raise ValueError(f"VALKEY magic with version {rdb_version}: Valkey uses it only from {VALKEY_MAGIC_VERSION}")
    return magic


def server_refusal(flavor: str, version: str, magic: str, rdb_version: int) -> str | None:
    """What a real server of ``flavor`` ``version`` logs when it refuses this RDB header, or None if it loads it.

    Args:
        flavor: ``"redis"`` or ``"valkey"``.
        version: The server's version, e.g. ``"3.2.6"``.
        magic: The header's magic, ``"REDIS"`` or ``"VALKEY"`` (`elasticache_migrate.rdb.RdbHeader.magic`).
        rdb_version: The header's version (``VALKEY080`` -> 80).

    Returns:
        None when the server loads the file (as far as the header decides); otherwise the start of the line it
        logs before exiting: ``"Wrong signature trying to load DB from file"`` or
        ``"Can't handle RDB format version N"``. An unknown server (Redis < 2.6, another flavor) is refused with
        a message saying so.

    Raises:
        ValueError: Not a header any server writes (unknown magic, version < 1, VALKEY below 80).
    """
    magic = _check_header(magic, rdb_version)
    own = rdb_version_written_by(flavor, version)
    if own is None:
        return f"unknown server {flavor} {version}: no RDB version known for it"
    if magic == "VALKEY" and flavor != "valkey":
        return "Wrong signature trying to load DB from file"
    refuse = f"Can't handle RDB format version {rdb_version}"
    if rdb_version > own:
        return refuse
    if flavor == "valkey" and magic == "REDIS" and rdb_version >= FOREIGN_RDB_VERSIONS.start:
        return refuse  # Redis 7.4+ formats (12-79) and REDIS >= 80, which Valkey never writes
    return None


def server_loads(flavor: str, version: str, magic: str, rdb_version: int) -> bool:
    """Whether a real ``flavor`` ``version`` server starts on an RDB with this header (see `server_refusal`)."""
    return server_refusal(flavor, version, magic, rdb_version) is None


def elasticache_loads(engine: str, engine_version: str, magic: str, rdb_version: int) -> bool:
    """Whether ElastiCache ``engine`` ``engine_version`` can be seeded from an RDB with this header.

    An engine line loads every version up to the newest it knows (`max_rdb_loaded_by_engine`); a ``VALKEY``
    header (Valkey 9) loads only on ElastiCache for Valkey >= 9.0; Valkey refuses the ``REDIS`` versions of Redis
    >= 7.4 (12-79) and any ``REDIS`` >= 80, as the real server does (`server_refusal`).

    Raises:
        ValueError: Not a header any server writes (see `server_refusal`).
    """
    magic = _check_header(magic, rdb_version)
    top = max_rdb_loaded_by_engine(engine, engine_version)
    if top is None or rdb_version > top:
        return False
    if magic == "VALKEY":
        return engine == "valkey"
    return not (engine == "valkey" and rdb_version >= FOREIGN_RDB_VERSIONS.start)
