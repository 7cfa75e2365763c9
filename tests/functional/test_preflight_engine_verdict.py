"""Preflight's engine verdict against real servers (issue 11, items 7-9): a stale dump on disk, a rehearsal binary
older than the snapshot, Valkey 9 on ElastiCache for Valkey 9.0/9.1 and its Valkey 9.1 stand-in.

Real servers of each version write the dumps (Redis 6.2.14 writes RDB 9; a Redis 7.0.15 started on that file keeps
it on disk until it saves); moto's S3 holds the staging bucket. The rehearsal stand-ins are real binaries: the
refusal quoted is the one the real server logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from elasticache_migrate.preflight.checks import run_checks
from elasticache_migrate.preflight.findings import blocking
from elasticache_migrate.rdb import read_header_file
from elasticache_migrate.staging.verdict import what_s3_holds
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import REGION, make_plan, need
from tests.support.outcomes import finding as _find
from tests.support.servers import saved_server


def stale_dump_source(tmp_path: Path) -> LocalRedisServer:
    """A Redis 7.0.15 server whose dump.rdb on disk is RDB 9, saved by Redis 6.2 before an "upgrade"."""
    old = saved_server(need("redis-6.2"), tmp_path, "src")
    old.stop()
    return LocalRedisServer(need("redis-7.0"), workdir=tmp_path / "src", config={"save": ""}).start()


def test_a_stale_rdb9_dump_on_a_redis_70_server_is_refused_for_a_62_target(tmp_path: Path, moto_endpoint: str,
                                                                            bucket: str) -> None:
    """Item 7: before, the RDB 9 file passed for redis 6.2 and the RDB 10 snapshot failed after the pause."""
    src = stale_dump_source(tmp_path)
    try:
        assert read_header_file(src.rdb_path).version == 9
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         target={"engine": "redis", "engine_version": "6.2"})
        findings = run_checks(plan)
        f = _find(findings, "engine", "block", "redis 6.2 cannot load RDB 10")
        assert "the running server (redis 7.0.15) writes RDB 10; current" in f.seen
        assert "is RDB 9 saved" in f.seen and "older than the server" in f.seen
        assert f.todo == "choose target.engine redis with engine_version 7.0 or newer"
        assert not [g for g in findings if g.check == "engine" and g.severity == "info"]  # no contradicting all-clear
        # the same server for a 7.0 target: the server decides, and it passes
        ok = run_checks(make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket,
                                  source_port=src.port))
        assert _find(ok, "engine", "info", "redis 7.0 loads RDB 10").seen
    finally:
        src.stop()


def test_a_rehearsal_binary_older_than_the_snapshot_is_refused(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                               source: LocalRedisServer) -> None:
    """Item 8: redis-6.2 cannot load the RDB 10 a Redis 7.0 source writes; the remedy names redis-7.0."""
    need("redis-6.2")
    r = source.client()
    r.set("k", "v")
    r.save()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"rehearsal_binary": "redis-6.2"})
    f = _find(run_checks(plan), "target", "block", "the rehearsal server redis-6.2 (redis 6.2.14) cannot load RDB 10")
    assert "Can't handle RDB format version 10" in f.seen
    assert f.todo.startswith("set target.rehearsal_binary: redis-7.0")
    fine = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"rehearsal_binary": "valkey-8.1"})   # newer than the RDB: loads it
    _find(run_checks(fine), "target", "info", "rehearsal target: valkey 8.1.8 (valkey-8.1) stands in for redis 7.0")


def test_valkey_9_source_passes_for_elasticache_valkey_9(tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    """Item 9: a VALKEY080 dump seeds ElastiCache for Valkey 9.0/9.1 (rehearsed on Valkey 9.1), not Valkey 8.x."""
    src = saved_server(need("valkey-9.1"), tmp_path, "src")
    try:
        for version in ("9.0", "9.1"):
            plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                             target={"engine": "valkey", "engine_version": version})
            findings = run_checks(plan)
            assert not blocking(findings), blocking(findings)
            _find(findings, "engine", "info", f"valkey {version} loads VALKEY080")
            _find(findings, "target", "info", f"rehearsal target: valkey 9.1.2 (valkey-9.1) stands in for valkey "
                  f"{version}, which loads VALKEY080")
        old = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                        target={"engine": "valkey", "engine_version": "8.1"})
        findings = run_checks(old)
        assert _find(findings, "engine", "block", "valkey 8.1 cannot load VALKEY080").todo == (
            "choose target.engine valkey with engine_version 9.0 or newer")
        _find(findings, "target", "block", "the rehearsal server valkey-8.1 (valkey 8.1.8) cannot load VALKEY080")
    finally:
        src.stop()


def test_what_s3_holds_after_a_refused_snapshot(tmp_path: Path, moto_endpoint: str, bucket: str, s3: Any) -> None:
    """The refusal's words: nothing under the key, or an earlier run's object left in place (not "nothing")."""
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=1)
    assert what_s3_holds(plan).endswith(f"nothing is stored under s3://{bucket}/{plan.object_key}")
    s3.put_object(Bucket=bucket, Key=plan.object_key, Body=b"REDIS0009" + bytes(91))
    said = what_s3_holds(plan)
    assert f"but s3://{bucket}/{plan.object_key} holds an object of 100 bytes from " in said
    assert "left in place: it is not removed" in said
    missing = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket="no-such-bucket-x", source_port=1)
    assert "nothing is stored" in what_s3_holds(missing) or "unknown" in what_s3_holds(missing)
    boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).delete_object(Bucket=bucket,
                                                                                      Key=plan.object_key)
