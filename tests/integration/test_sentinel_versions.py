"""Sentinel discovery and what preflight reads of the set, on every server version the project supports besides
the 3.2 and 7.0 of the functional tests: Redis 3.0, 5.0 (Sentinel AUTH appears in 5.0.1), 6.2, Valkey 8.1 and 9.1.
Each set: a master, a replica, three Sentinels; the plan's first Sentinel down; then a Sentinel failover."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.plan import RedisConnection
from elasticache_migrate.source.sentinel import discover, survey
from tests.conftest import need
from tests.support.sentinel import SentinelSet


@pytest.mark.parametrize("version", ["redis-3.0", "redis-5.0", "redis-6.2", "valkey-8.1", "valkey-9.1"])
def test_discovery_and_survey_on_every_version(tmp_path: Path, version: str) -> None:
    binary = need(version)
    with SentinelSet(binary, tmp_path / "set") as sset:
        replica = sset.replica_nodes()[0]
        sset.stop_sentinel(0)
        conn = RedisConnection(**sset.redis_connection())
        assert discover(conn, None).master == sset.current_master()
        seen = survey(conn, None)
        assert seen[0].error is not None and "refused" in seen[0].error.lower()
        for s in seen[1:]:
            assert s.error is None and s.version == f"{binary.flavor} {binary.version}" and s.quorum == 2
            assert [n.address for n in s.replicas] == [(replica.host, replica.port)]
            assert len(s.sentinels) == 2
        new = sset.failover()
        assert new == (replica.host, replica.port)
        assert discover(conn, None).master == new
