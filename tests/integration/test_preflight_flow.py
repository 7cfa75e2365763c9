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
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.ports import free_port
from flows.migrate import migrate_redis
from tests.conftest import REGION, make_plan, need
from tests.support.outcomes import preflight_report
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
