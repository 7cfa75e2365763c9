"""Sentinel discovery against real Sentinel sets (Redis 3.2.6 and 7.0.15: a master, a replica, three Sentinels).

Redis 3.x Sentinels reject HELLO (redis-py 8's default handshake): discovery must speak RESP2 to them. The plan
names three Sentinels; with the first one down the other two answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.errors import SourceError
from elasticache_migrate.plan import RedisConnection
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.sentinel_checks import sentinel_findings
from elasticache_migrate.source.sentinel import discover
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.ports import free_port
from tests.conftest import make_plan, need
from tests.support.sentinel import SentinelProcess, SentinelSet


@pytest.mark.parametrize("version", ["redis-3.2", "redis-7.0"])
def test_discovery_with_the_first_sentinel_down(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                version: str) -> None:
    from elasticache_migrate.source.connection import source_client

    with SentinelSet(need(version), tmp_path / "set") as sset:
        master = sset.current_master()
        sset.nodes[0].client().set("probe", "on-the-master")
        sset.stop_sentinel(0)
        conn = RedisConnection(**sset.redis_connection())
        view = discover(conn, None)
        assert view.master == master
        assert view.answered_by == sset.sentinels[1].address
        assert view.agreeing == (sset.sentinels[1].address, sset.sentinels[2].address)
        assert [p.address for p in view.unreachable] == [sset.sentinels[0].address]
        assert "refused" in view.unreachable[0].error.lower()

        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=conn.port,
                         source={"kind": "host", "redis": sset.redis_connection()})
        r = source_client(plan)
        assert r.info("replication")["role"] == "master" and r.get("probe") == b"on-the-master"
        r.close()


def test_no_sentinel_reachable_names_each(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    conn = RedisConnection(host="127.0.0.1", port=ports[0], sentinel_master="appmaster",
                           sentinels=[f"127.0.0.1:{ports[1]}"])
    with pytest.raises(SourceError) as caught:
        discover(conn, None)
    assert all(f"127.0.0.1:{p}: ConnectionError" in str(caught.value) for p in ports)
    assert "source.redis.sentinels" in caught.value.remedy


def test_disagreeing_sentinels_stop_discovery(tmp_path: Path) -> None:
    """Two Sentinels that name different masters (a failover under way, a partition): strict discovery refuses."""
    binary = need("redis-3.2")
    a = LocalRedisServer(binary, workdir=tmp_path / "a").start()
    b = LocalRedisServer(binary, workdir=tmp_path / "b").start()
    sentinels = [SentinelProcess(binary, tmp_path / f"s{i}", free_port(), "appmaster", ("127.0.0.1", node.port),
                                 1, 1000, 5000) for i, node in enumerate((a, b))]
    try:
        for s in sentinels:
            s.start()
        conn = RedisConnection(host="127.0.0.1", port=sentinels[0].port, sentinel_master="appmaster",
                               sentinels=[f"127.0.0.1:{sentinels[1].port}"])
        with pytest.raises(SourceError, match="disagree") as caught:
            discover(conn, None)
        assert caught.value.retryable
        view = discover(conn, None, strict=False)
        assert view.master == ("127.0.0.1", a.port)
        assert view.disagreeing == ((sentinels[1].address, ("127.0.0.1", b.port)),)
        plan = make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=1,
                         source={"kind": "host", "redis": conn.model_dump()})
        blocks = [f for f in sentinel_findings(plan, PreflightFacts()) if f.severity == "block"]
        assert len(blocks) == 1 and "the Sentinels disagree about the master 'appmaster'" in blocks[0].seen
        assert f"127.0.0.1:{sentinels[1].port} names 127.0.0.1:{b.port}" in blocks[0].seen
        wrong_name: Any = RedisConnection(host="127.0.0.1", port=sentinels[0].port, sentinel_master="other")
        with pytest.raises(SourceError, match="does not monitor a master named 'other'"):
            discover(wrong_name, None)
    finally:
        for s in sentinels:
            s.stop()
        a.stop()
        b.stop()


def test_sentinel_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sentinels with a password (``requirepass`` in sentinel.conf) and a master with another one: discovery AUTHs
    with source.redis.sentinel_password_secret; without it each Sentinel is named with the AUTH error."""
    from elasticache_migrate.source.connection import resolve_master

    with SentinelSet(need("redis-7.0"), tmp_path / "set", password="master-pw", sentinel_password="sentinel-pw") as s:
        without = RedisConnection(**s.redis_connection(password_secret="env:SRC_PW"))
        with pytest.raises(SourceError) as caught:
            discover(without, None)
        assert str(caught.value).count("AUTH refused") == 3 and "sentinel_password_secret" in str(caught.value)
        monkeypatch.setenv("SENTINEL_PW", "sentinel-pw")
        conn = RedisConnection(**s.redis_connection(password_secret="env:SRC_PW",
                                                    sentinel_password_secret="env:SENTINEL_PW"))
        assert resolve_master(conn) == s.current_master()
