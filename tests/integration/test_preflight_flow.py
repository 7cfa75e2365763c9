"""A plan-only run of the real flow: it lists every problem and changes nothing, or completes with the report.

Real servers (Redis 7.0, Valkey 9.1, a replica, a Sentinel), real RDB files (corrupted and truncated
copies of real dumps, a module-typed file built byte by byte), moto's S3/EC2/ElastiCache. moto lacks
describe_cache_engine_versions: that check runs against botocore's Stubber, which validates each request
against the real ElastiCache API model (it cannot show what AWS would answer in a given region).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from elasticache_migrate.errors import PreflightError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.ports import free_port
from flows.migrate import migrate_redis
from tests.conftest import REGION, make_plan, need
from tests.support.network import make_network
from tests.support.outcomes import migrated, preflight_report, rehearsal_target
from tests.support.servers import saved_server as _saved_server

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_plan_only_lists_every_problem_and_changes_nothing(tmp_path: Path, moto_endpoint: str, capsys: Any,
                                                           ) -> None:
    """A bad setup, everything at once: each problem is listed with its remedy; nothing is touched."""
    valkey9 = need("valkey-9.1")
    src = _saved_server(valkey9, tmp_path, "src")            # its dump.rdb is VALKEY080
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto_endpoint)
    bucket = f"wrong-region-{free_port()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
        {"ObjectOwnership": "BucketOwnerEnforced"}]})
    try:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         target={"kind": "elasticache", "replication_group_id": "shop-cache", "engine": "redis",
                                 "engine_version": "7.1", "subnet_group": "no-such-subnets",
                                 "security_group_ids": ["sg-0123456789abcdef0"]})
        state = migrate_redis(plan, plan_only=True, return_state=True)
        with pytest.raises(PreflightError) as err:
            state.result()
        msg = str(err.value)
        for expected in ("VALKEY080", "is in eu-west-1, the target in us-east-1", "BucketOwnerEnforced",
                         "no-such-subnets", "sg-0123456789abcdef0"):
            assert expected in msg
        out = capsys.readouterr().out
        assert "5 BLOCKING PROBLEM(S)" in out or "BLOCKING PROBLEM" in out   # the report on stdout
        assert "→ ElastiCache reads only from its own region" in out
        # nothing changed: no object, no replication group, no journal, the source still takes writes
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
        assert not [g for g in ec.describe_replication_groups()["ReplicationGroups"]
                    if g["ReplicationGroupId"] == "shop-cache"]
        assert not (plan.workdir / "journal.json").exists()
        assert redis_client("127.0.0.1", src.port, timeout=1).set("still", "writable")
    finally:
        src.stop()


def test_plan_only_on_a_good_setup_completes_with_the_report(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                             source: LocalRedisServer, app_env: Path) -> None:
    r = source.client()
    r.set("a", "1")
    r.save()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    result = preflight_report(migrate_redis(plan, plan_only=True))
    checks = {(f.check, f.severity) for f in result.findings}
    assert not [c for c in checks if c[1] == "block"]
    assert {("source", "info"), ("rdb-integrity", "info"), ("engine", "info"), ("bucket", "info"),
            ("grant", "info"), ("cutover", "info")} <= checks


# --- issue 11: each preflight case blocks with its remedy, and a real run of the same plan changes nothing ---------


def _stale_dump_source(tmp_path: Path) -> LocalRedisServer:
    """A Redis 7.0.15 server whose dump.rdb on disk is RDB 9, saved by Redis 6.2 before an "upgrade"."""
    old = _saved_server(need("redis-6.2"), tmp_path, "src")
    old.stop()
    return LocalRedisServer(need("redis-7.0"), workdir=tmp_path / "src", config={"save": ""}).start()


def _run_is_refused_and_changes_nothing(plan: MigrationPlan, src: LocalRedisServer, app_env: Path,
                                        expected: list[str]) -> str:
    """A real (not plan-only) run of ``plan``: refused by preflight naming each of ``expected``; the source is not
    paused (it takes a write at once), S3 holds nothing under the plan's prefix, the app's config is byte for byte
    what it was, no journal was started."""
    before = app_env.read_bytes()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=plan.aws.endpoint_url)
    state = migrate_redis(plan, return_state=True)
    with pytest.raises(PreflightError) as err:
        state.result()
    msg = str(err.value)
    for text in expected:
        assert text in msg
    probe = redis_client("127.0.0.1", src.port, timeout=1)
    assert probe.set("still-writable", "yes")                      # not paused, not fenced
    assert s3.list_objects_v2(Bucket=plan.staging.bucket).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=plan.staging.bucket).get("Uploads")
    assert app_env.read_bytes() == before
    assert not (plan.workdir / "journal.json").exists()
    return msg


def test_stale_dump_blocks_and_a_real_run_changes_nothing(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                          app_env: Path) -> None:
    src = _stale_dump_source(tmp_path)
    try:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         target={"engine_version": "6.2"}, cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
        _run_is_refused_and_changes_nothing(plan, src, app_env, [
            "redis 6.2 cannot load RDB 10", "the running server (redis 7.0.15) writes RDB 10", "is RDB 9 saved",
            "choose target.engine redis with engine_version 7.0 or newer"])
    finally:
        src.stop()


def test_old_rehearsal_binary_blocks_and_a_real_run_changes_nothing(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                    source: LocalRedisServer, app_env: Path) -> None:
    need("redis-6.2")
    r = source.client()
    r.set("k", "v")
    r.save()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"rehearsal_binary": "redis-6.2"},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    _run_is_refused_and_changes_nothing(plan, source, app_env, [
        "the rehearsal server redis-6.2 (redis 6.2.14) cannot load RDB 10", "set target.rehearsal_binary: redis-7.0"])


def test_valkey_9_source_migrates_to_elasticache_valkey_90_rehearsed_on_valkey_91(
        tmp_path: Path, moto_endpoint: str, bucket: str, app_env: Path) -> None:
    """Item 9: a VALKEY080 snapshot seeds the Valkey 9.1 stand-in for ElastiCache for Valkey 9.0; every key arrives.

    The staged transfer reads the dump BGSAVE writes (VALKEY080); over SYNC Valkey 9.1 sends a replica that does not
    announce the new format REDIS0011 instead, which would not exercise the Valkey 9 row."""
    src = _saved_server(need("valkey-9.1"), tmp_path, "src")
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "staged"},
                     target={"engine": "valkey", "engine_version": "9.0"},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    try:
        result = migrated(migrate_redis(plan))
        assert (result.rdb.magic, result.rdb.rdb_version) == ("VALKEY", 80)
        assert result.keys_verified == 50
        assert rehearsal_target(plan).binary == "valkey-9.1"
        assert f"REDIS_URL=redis://127.0.0.1:{result.endpoint.port}/0" in app_env.read_text()
    finally:
        stop_rehearsal_target(plan.workdir)
        src.stop()


def test_namespaced_sidekiq_among_60000_keys_refuses_cluster_mode_and_a_real_run_changes_nothing(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path) -> None:
    r = source.client()
    pipe = r.pipeline(transaction=False)
    for i in range(60_000):
        pipe.set(f"cache:page:{i}", "x")
    pipe.execute()
    r.sadd("myapp:queues", "default")
    r.lpush("myapp:queue:default", "{}")
    r.incr("myapp:stat:processed")
    for suffix in ("id", "meta", "events", "wait"):
        r.set(f"jobs:email:{suffix}", "1")
    r.save()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"cluster_mode": True}, cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    _run_is_refused_and_changes_nothing(plan, source, app_env, [
        "Sidekiq keys: myapp:queues", "Bull/BullMQ queue(s) without a hash tag: jobs:email",
        "scanned the whole keyspace of 60,007 key(s)", "keep cluster mode disabled"])


def test_a_security_group_closed_to_the_app_blocks_and_a_real_run_changes_nothing(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path) -> None:
    """Item 12, on moto's EC2 and ElastiCache: the run stops before the source is paused or the group created."""
    net = make_network(moto_endpoint, REGION)
    r = source.client()
    r.set("k", "v")
    r.save()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"kind": "elasticache", "replication_group_id": "reach-cache", "engine": "redis",
                             "engine_version": "7.1", "subnet_group": net.subnet_group,
                             "security_group_ids": [net.closed_group], "app_sources": ["10.0.1.0/24"],
                             "worker_source": net.worker_group},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    _run_is_refused_and_changes_nothing(plan, source, app_env, [
        f"aws ec2 authorize-security-group-ingress --group-id {net.closed_group} --protocol tcp --port 6379 "
        "--cidr 10.0.1.0/24", f"--source-group {net.worker_group}"])
    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    assert not [g for g in ec.describe_replication_groups()["ReplicationGroups"]
                if g["ReplicationGroupId"] == "reach-cache"]
