"""Preflight on a Sentinel source, the pure parts: replicas from INFO, whether a host is this one, where the RDB
file is (the live checks are in tests/functional/test_preflight_sentinel.py)."""

from __future__ import annotations

from elasticache_migrate.preflight.sentinel_checks import replicas_from_info


def test_replicas_from_info_replication() -> None:
    info = {"role": "master", "connected_slaves": 2,
            "slave0": {"ip": "10.0.0.12", "port": 6379, "state": "online", "offset": 10, "lag": 0},
            "slave1": {"ip": "10.0.0.13", "port": 6380, "state": "wait_bgsave", "offset": 0, "lag": 1}}
    assert replicas_from_info(info) == [(("10.0.0.12", 6379), "online", "0"), (("10.0.0.13", 6380), "wait_bgsave", "1")]


def test_local_host() -> None:
    from elasticache_migrate.preflight.sentinel_checks import is_local_host

    assert is_local_host("127.0.0.1") and is_local_host("localhost")
    assert not is_local_host("192.0.2.10")  # TEST-NET-1: never an interface of this machine
    assert not is_local_host("no-such-host.invalid")


def test_where_the_rdb_is_on_a_sentinel_source() -> None:
    """source.kind host reads the RDB from this host: blocked when the master the Sentinels name is elsewhere."""
    from pathlib import Path

    import redis

    from elasticache_migrate.preflight.facts import PreflightFacts
    from elasticache_migrate.preflight.sentinel_checks import rdb_host_findings
    from elasticache_migrate.state import ServerInfo
    from tests.conftest import make_plan

    def run(kind: str, master: str, version: tuple[int, int, int]) -> tuple[str, str]:
        source = {"kind": kind, "container": "redis-1" if kind == "docker" else None,
                  "redis": {"host": "10.0.0.11", "port": 26379, "sentinel_master": "mymaster"}}
        plan = make_plan(tmp_path=Path("/tmp/unused"), moto_endpoint="http://127.0.0.1:9", bucket="unused",
                         source_port=1, source=source)
        facts = PreflightFacts(server=ServerInfo("redis", version), client=redis.Redis(host=master, port=6379))
        (f,) = rdb_host_findings(plan, facts)
        return f.severity, f.seen

    severity, seen = run("host", "192.0.2.10", (3, 2, 6))
    assert severity == "block" and "the master 192.0.2.10:6379 is not on this host" in seen
    assert run("host", "127.0.0.1", (3, 2, 6))[0] == "warn"
    assert run("docker", "192.0.2.10", (3, 2, 6))[0] == "warn"
    assert run("host", "192.0.2.10", (7, 0, 15))[0] == "info"  # auto reads over SYNC: no file, anywhere
