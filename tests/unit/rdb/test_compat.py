"""elasticache_migrate.rdb.compat: which RDB each server writes and which ElastiCache engine can be seeded from it.

The numbers are those of the field notes (Redis'/Valkey's ``src/rdb.h`` per release); a wrong row here
means a migration that fails at restore after the write pause, so each row is pinned.
"""

from __future__ import annotations

import pytest

from elasticache_migrate.rdb.compat import (
    VALKEY_MAGIC_VERSION,
    engine_loads,
    lowest_engine_loading,
    max_rdb_loaded_by_engine,
    parse_version,
    rdb_version_written_by,
)


@pytest.mark.parametrize(
    ("flavor", "version", "rdb"),
    [
        ("redis", "2.6.17", 6),
        ("redis", "3.0.5", 6),
        ("redis", "3.2.6", 7),
        ("redis", "4.0.14", 8),
        ("redis", "5.0.10", 9),
        ("redis", "6.0.9", 9),
        ("redis", "6.2.14", 9),
        ("redis", "7.0.15", 10),
        ("redis", "7.2.4", 11),
        ("redis", "7.4.1", 12),
        ("redis", "8.0.2", 12),
        ("valkey", "7.2.5", 11),
        ("valkey", "8.0.1", 11),
        ("valkey", "8.1.8", 11),
        ("valkey", "9.1.2", VALKEY_MAGIC_VERSION),
    ],
)
def test_rdb_version_written_by(flavor: str, version: str, rdb: int) -> None:
    assert rdb_version_written_by(flavor, version) == rdb


def test_unknown_writer_is_none() -> None:
    assert rdb_version_written_by("redis", "2.4.10") is None
    assert rdb_version_written_by("keydb", "6.3.4") is None
    assert VALKEY_MAGIC_VERSION == 80


@pytest.mark.parametrize(
    ("engine", "version", "top"),
    [
        ("redis", "4.0.10", 8),
        ("redis", "5.0.6", 9),
        ("redis", "6.2", 9),
        ("redis", "7.0", 10),
        ("redis", "7.1", 10),
        ("valkey", "7.2", 11),
        ("valkey", "8.0", 11),
        ("valkey", "8.1", 11),
        ("valkey", "9.0", VALKEY_MAGIC_VERSION),
        ("valkey", "9.1", VALKEY_MAGIC_VERSION),
    ],
)
def test_max_rdb_loaded_by_engine(engine: str, version: str, top: int) -> None:
    assert max_rdb_loaded_by_engine(engine, version) == top


@pytest.mark.parametrize(
    ("engine", "version", "rdb", "loads"),
    [
        ("redis", "6.2", 9, True),
        ("redis", "6.2", 7, True),     # older always loads in newer
        ("redis", "6.2", 10, False),
        ("redis", "7.1", 10, True),
        ("redis", "7.1", 11, False),   # a Redis 7.2 dump cannot seed ElastiCache Redis OSS 7.1
        ("valkey", "8.0", 11, True),
        ("valkey", "8.0", 12, False),  # a Redis 7.4 dump seeds nothing on ElastiCache
        ("valkey", "8.1", VALKEY_MAGIC_VERSION, False),
        ("valkey", "9.0", VALKEY_MAGIC_VERSION, True),   # ElastiCache for Valkey 9.0/9.1 load VALKEY080
        ("valkey", "9.1", 11, True),
        ("valkey", "9.1", 12, False),                    # still not a Redis 7.4 dump
        ("redis", "7.1", VALKEY_MAGIC_VERSION, False),
        ("memcached", "1.6", 6, False),
    ],
)
def test_engine_loads(engine: str, version: str, rdb: int, loads: bool) -> None:
    assert engine_loads(engine, version, rdb) is loads


@pytest.mark.parametrize(
    ("rdb", "expected"),
    [
        (7, ("redis", "4.0")),
        (9, ("redis", "5.0")),
        (10, ("redis", "7.0")),
        (11, ("valkey", "7.2")),
        (12, None),
        (VALKEY_MAGIC_VERSION, ("valkey", "9.0")),
        (VALKEY_MAGIC_VERSION + 1, None),
    ],
)
def test_lowest_engine_loading(rdb: int, expected: tuple[str, str] | None) -> None:
    assert lowest_engine_loading(rdb) == expected


@pytest.mark.parametrize(("raw", "parsed"), [("7.0.15", (7, 0)), ("7", (7, 0)), (" 6.2 ", (6, 2)), ("8.1.8", (8, 1))])
def test_parse_version(raw: str, parsed: tuple[int, int]) -> None:
    assert parse_version(raw) == parsed


@pytest.mark.parametrize("raw", ["", "latest", "x.y"])
def test_parse_version_refuses_garbage(raw: str) -> None:
    with pytest.raises(ValueError, match="not a version"):
        parse_version(raw)
