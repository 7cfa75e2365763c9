"""Shared bits of the staging unit tests: a plan, an RDB's bytes, a checked local copy's record."""

from __future__ import annotations

import random

import pytest

from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.rdb import crc64_jones
from elasticache_migrate.state import Extracted

MID = "orders-2024"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def rdb_bytes(n: int = 5000, seed: int = 1) -> bytes:
    """A syntactically plausible RDB: header, random body, 0xFF, and the CRC-64 of all that."""
    body = b"REDIS0010" + random.Random(seed).randbytes(n) + b"\xff"
    return body + crc64_jones(body).to_bytes(8, "little")


def random_cuts(n: int, seed: int, pieces: int = 30) -> list[int]:
    return sorted(random.Random(seed).sample(range(1, n), min(pieces, n - 1)))


def extracted(size: int = 1234) -> Extracted:
    return Extracted(path="/tmp/dump.rdb", size=size, sha256=SHA, crc64_stored=0xABC, crc64_computed=0xABC,
                     rdb_version=10, magic="REDIS", origin="host:/var/lib/redis/dump.rdb")


@pytest.fixture
def plan() -> MigrationPlan:
    return validate_plan({"migration_id": MID, "source": {"kind": "host"}, "staging": {"bucket": "stage"},
                          "target": {"replication_group_id": "app-cache"}})
