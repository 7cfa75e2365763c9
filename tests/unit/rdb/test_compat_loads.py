"""elasticache_migrate.rdb.compat's load verdicts: which real server and which ElastiCache engine loads an RDB header.

The server rows are what the real servers did (tests/functional/test_rdb_corpus.py re-checks them against
Redis 3.0.5, 3.2.6, 5.0.10, 6.0.9, 6.2.14, 7.0.15, Valkey 8.1.8 and 9.1.2); Redis 7.4/8.0 rows follow the
RDB table, no such binary being obtainable here. The ElastiCache rows are the field notes' inferred matrix.
"""

from __future__ import annotations

import pytest

from elasticache_migrate.rdb.compat import elasticache_loads, engine_loads, server_loads, server_refusal

SERVERS = [
    ("redis", "3.0.5"), ("redis", "3.2.6"), ("redis", "5.0.10"), ("redis", "6.0.9"), ("redis", "6.2.14"),
    ("redis", "7.0.15"), ("valkey", "8.1.8"), ("valkey", "9.1.2"),
]  # fmt: skip
# header written by each of SERVERS, in the same order
HEADERS = [("REDIS", 6), ("REDIS", 7), ("REDIS", 9), ("REDIS", 9), ("REDIS", 9), ("REDIS", 10), ("REDIS", 11),
           ("VALKEY", 80)]  # fmt: skip

# observed: writer (row) x target (column), 1 = loaded
OBSERVED = """
            3.0 3.2 5.0 6.0 6.2 7.0 v8.1 v9.1
redis-3.0    1   1   1   1   1   1   1    1
redis-3.2    0   1   1   1   1   1   1    1
redis-5.0    0   0   1   1   1   1   1    1
redis-6.0    0   0   1   1   1   1   1    1
redis-6.2    0   0   1   1   1   1   1    1
redis-7.0    0   0   0   0   0   1   1    1
valkey-8.1   0   0   0   0   0   0   1    1
valkey-9.1   0   0   0   0   0   0   0    1
"""


def _observed() -> list[tuple[int, int, bool]]:
    rows = [line.split()[1:] for line in OBSERVED.strip().splitlines()[1:]]
    return [(w, t, cell == "1") for w, row in enumerate(rows) for t, cell in enumerate(row)]


@pytest.mark.parametrize(("writer", "target", "loads"), _observed())
def test_server_matrix_as_observed(writer: int, target: int, loads: bool) -> None:
    magic, version = HEADERS[writer]
    assert server_loads(*SERVERS[target], magic, version) is loads


@pytest.mark.parametrize(
    ("flavor", "version", "magic", "rdb", "refusal"),
    [
        ("redis", "3.0.5", "REDIS", 7, "Can't handle RDB format version 7"),
        ("redis", "7.0.15", "REDIS", 11, "Can't handle RDB format version 11"),
        ("redis", "7.0.15", "VALKEY", 80, "Wrong signature trying to load DB from file"),
        ("redis", "3.0.5", "VALKEY", 80, "Wrong signature trying to load DB from file"),
        ("valkey", "8.1.8", "VALKEY", 80, "Can't handle RDB format version 80"),  # knows the magic, not the version
        ("valkey", "8.1.8", "REDIS", 12, "Can't handle RDB format version 12"),
        ("valkey", "9.1.2", "REDIS", 12, "Can't handle RDB format version 12"),  # Redis 7.4+ range, below its own 80
        ("valkey", "9.1.2", "REDIS", 79, "Can't handle RDB format version 79"),
        ("valkey", "9.1.2", "REDIS", 80, "Can't handle RDB format version 80"),  # 80 only with the VALKEY magic
        ("valkey", "9.1.2", "VALKEY", 81, "Can't handle RDB format version 81"),
        ("valkey", "9.1.2", "VALKEY", 80, None),
        ("valkey", "9.1.2", "REDIS", 1, None),  # nothing refuses an older version
        ("valkey", "9.1.2", "REDIS", 11, None),
        ("redis", "7.4.1", "REDIS", 12, None),
        ("redis", "8.0.2", "VALKEY", 80, "Wrong signature trying to load DB from file"),
        ("valkey", "7.2.5", "REDIS", 11, None),
    ],
)
def test_server_refusal_messages(flavor: str, version: str, magic: str, rdb: int, refusal: str | None) -> None:
    assert server_refusal(flavor, version, magic, rdb) == refusal
    assert server_loads(flavor, version, magic, rdb) is (refusal is None)


def test_unknown_server_does_not_load() -> None:
    assert not server_loads("redis", "2.4.10", "REDIS", 4)
    assert server_refusal("keydb", "6.3.4", "REDIS", 9) == "unknown server keydb 6.3.4: no RDB version known for it"


@pytest.mark.parametrize(("magic", "rdb"), [("RDB", 9), ("REDIS", 0), ("VALKEY", 11), ("VALKEY", 79)])
def test_headers_no_server_writes_are_errors(magic: str, rdb: int) -> None:
    with pytest.raises(ValueError):
        server_loads("valkey", "9.1.2", magic, rdb)
    with pytest.raises(ValueError):
        elasticache_loads("valkey", "8.0", magic, rdb)


def test_magic_is_case_insensitive() -> None:
    assert server_loads("valkey", "9.1.2", "valkey", 80)


@pytest.mark.parametrize(
    ("engine", "version", "magic", "rdb", "loads"),
    [
        ("redis", "4.0.10", "REDIS", 8, True),
        ("redis", "4.0.10", "REDIS", 9, False),
        ("redis", "5.0.6", "REDIS", 9, True),
        ("redis", "6.2", "REDIS", 9, True),
        ("redis", "6.2", "REDIS", 10, False),
        ("redis", "7.0", "REDIS", 10, True),
        ("redis", "7.1", "REDIS", 6, True),
        ("redis", "7.1", "REDIS", 10, True),
        ("redis", "7.1", "REDIS", 11, False),
        ("redis", "7.1", "VALKEY", 80, False),
        ("valkey", "7.2", "REDIS", 11, True),
        ("valkey", "8.0", "REDIS", 11, True),
        ("valkey", "8.0", "REDIS", 6, True),
        ("valkey", "8.1", "REDIS", 11, True),
        ("valkey", "8.0", "REDIS", 12, False),
        ("valkey", "8.1", "VALKEY", 80, False),
        ("valkey", "9.0", "VALKEY", 80, True),   # ElastiCache for Valkey 9.0 and 9.1 load what Valkey 9 writes
        ("valkey", "9.1", "VALKEY", 80, True),
        ("valkey", "9.1", "VALKEY", 81, False),
        ("valkey", "9.1", "REDIS", 11, True),
        ("valkey", "9.0", "REDIS", 12, False),   # Valkey refuses Redis 7.4+ formats, as the real 9.1.2 does
        ("redis", "7.1", "REDIS", 12, False),
        ("valkey", "8.1", "REDIS", 12, False),
        ("memcached", "1.6", "REDIS", 6, False),
    ],
)
def test_elasticache_loads(engine: str, version: str, magic: str, rdb: int, loads: bool) -> None:
    assert elasticache_loads(engine, version, magic, rdb) is loads
    if magic == "REDIS":
        assert engine_loads(engine, version, rdb) is loads


@pytest.mark.parametrize("engine", [("redis", "4.0.10"), ("redis", "6.2"), ("redis", "7.1"), ("valkey", "7.2"),
                                    ("valkey", "8.0"), ("valkey", "8.1"), ("valkey", "9.0"),
                                    ("valkey", "9.1")])  # fmt: skip
def test_nothing_on_elasticache_loads_rdb_12_nor_valkey_magic_before_valkey_9(engine: tuple[str, str]) -> None:
    for rdb in (12, 13, 79, 80, 81):
        assert not elasticache_loads(*engine, "REDIS", rdb)
    assert elasticache_loads(*engine, "VALKEY", 80) is (engine[0] == "valkey" and engine[1] >= "9.0")
    assert not elasticache_loads(*engine, "VALKEY", 81)


@pytest.mark.parametrize("engine", [("valkey", "9.0"), ("valkey", "9.1")])
def test_elasticache_valkey_9_loads_what_the_real_valkey_91_loads(engine: tuple[str, str]) -> None:
    """The ElastiCache rows for Valkey 9.x agree with the real Valkey 9.1.2 server (the rehearsal stand-in)."""
    for magic, rdb in [("REDIS", v) for v in (6, 7, 8, 9, 10, 11, 12, 79, 80)] + [("VALKEY", 80), ("VALKEY", 81)]:
        assert elasticache_loads(*engine, magic, rdb) is server_loads("valkey", "9.1.2", magic, rdb), (magic, rdb)
