"""Preflight against real bad inputs: each check refuses what would fail, and a plan-only run changes nothing.

Real servers (Redis 7.0, Valkey 9.1, a replica, a Sentinel), real RDB files (corrupted and truncated
copies of real dumps, a module-typed file built byte by byte), moto's S3/EC2/ElastiCache. moto lacks
describe_cache_engine_versions: that check runs against botocore's Stubber, which validates each request
against the real ElastiCache API model (it cannot show what AWS would answer in a given region).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from elasticache_migrate.preflight.checks import run_checks
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.ports import free_port
from tests.conftest import REGION, make_plan
from tests.support.network import Network, make_network
from tests.support.outcomes import finding as _find
from tests.unit.rdb.rdb_writer import module2_value, rdb, s


def test_engine_from_version_before_any_snapshot(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                 redis70: Any) -> None:
    """No RDB on disk yet: the source's version decides, and the lowest engine that loads it is suggested."""
    srv = LocalRedisServer(redis70, workdir=tmp_path / "nosave", config={"save": ""}).start()
    try:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=srv.port,
                         target={"kind": "rehearsal", "replication_group_id": "x", "engine": "redis",
                                 "engine_version": "6.2"})
        f = _find(run_checks(plan), "engine", "block", "cannot load RDB 10")
        assert "engine_version 7.0" in f.todo
    finally:
        srv.stop()


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-checksum", "module"])
def test_rdb_integrity_of_the_current_dump(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any,
                                           damage: str) -> None:
    r = source.client()
    for i in range(300):
        r.set(f"key:{i}", "x" * 50)
    r.save()
    r.close()
    real = Path(source.rdb_path)
    bad = tmp_path / f"{damage}.rdb"
    data = bytearray(real.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "no-checksum":
        data[-8:] = bytes(8)                      # what `rdbchecksum no` writes
    else:
        body = b"\xfe\x00" + b"\x07" + s(b"doc:1") + module2_value("ReJSON-RL")
        data = bytearray(rdb(body, version=10))
    bad.write_bytes(bytes(data))
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     source={"kind": "host", "rdb_path": str(bad), "redis": {"port": source.port}})
    findings = run_checks(plan)
    if damage == "flip":
        f = _find(findings, "rdb-integrity", "block", "")
        assert "CRC-64 mismatch" in f.seen or "offset" in f.seen
    elif damage == "truncate":
        _find(findings, "rdb-integrity", "block", "truncated")
    elif damage == "no-checksum":
        f = _find(findings, "rdb-integrity", "warn", "no checksum")
        assert "rdbchecksum yes" in f.todo
    else:
        f = _find(findings, "modules", "block", "ReJSON-RL")
        assert "loads no modules" in f.todo


def test_replica_source_is_refused(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any, redis70: Any) -> None:
    replica = LocalRedisServer(redis70, workdir=tmp_path / "replica",
                               config={"replicaof": f"127.0.0.1 {source.port}"}).start()
    try:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=replica.port)
        f = _find(run_checks(plan), "source", "block", "is a replica of 127.0.0.1")
        assert "sentinel_master" in f.todo
    finally:
        replica.stop()


def test_sentinel_resolves_the_master(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any,
                                      redis70: Any) -> None:
    """A Sentinel-managed source: the plan names the Sentinel, preflight (and the flow) talk to the master."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor appmaster 127.0.0.1 {source.port} 1\n")
    proc = subprocess.Popen([str(redis70.path), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if redis_client("127.0.0.1", port, timeout=1).execute_command(
                        "SENTINEL", "get-master-addr-by-name", "appmaster"):
                    break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.1)
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=port,
                         source={"kind": "host", "redis": {"host": "127.0.0.1", "port": port,
                                                           "sentinel_master": "appmaster"}})
        f = _find(run_checks(plan), "source", "info", f"source 127.0.0.1:{source.port} is redis 7.0")
        assert "resolved through Sentinel" in f.seen
    finally:
        proc.terminate()
        proc.wait(10)


def test_unreachable_source_and_rdbchecksum_off(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                redis70: Any) -> None:
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=free_port())
    _find(run_checks(plan), "source", "block", "cannot reach the source")
    srv = LocalRedisServer(redis70, workdir=tmp_path / "nocrc", config={"rdbchecksum": "no"}).start()
    try:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=srv.port)
        _find(run_checks(plan), "source", "warn", "rdbchecksum is off")
    finally:
        srv.stop()


def test_clients_are_named_by_library(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any) -> None:
    app = redis_client("127.0.0.1", source.port, name="sidekiq-worker")
    app.ping()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port)
    f = _find(run_checks(plan), "clients", "warn", "1 application client(s)")
    assert "sidekiq-worker" in f.seen and "maintenance mode" in f.todo
    app.close()


def test_bucket_with_kms_default_encryption_is_noted(tmp_path: Path, moto_endpoint: str, bucket: str, s3: Any,
                                                     source: Any) -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port)
    f = _find(run_checks(plan), "bucket", "info", "aws:kms")
    assert "forces SSE-S3 (AES256)" in f.seen


def test_opt_in_region_uses_the_bucket_policy_route(tmp_path: Path, moto_endpoint: str, source: Any) -> None:
    """ap-east-1: ACLs disabled is fine there, and the grant step writes the bucket-policy statement."""
    import json

    from elasticache_migrate.staging.grant import grant_read, policy_allows
    from elasticache_migrate.state import StagedObject

    s3 = boto3.client("s3", region_name="ap-east-1", endpoint_url=moto_endpoint)
    bucket = f"hk-staging-{free_port()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
        {"ObjectOwnership": "BucketOwnerEnforced"}]})
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     aws={"region": "ap-east-1", "endpoint_url": moto_endpoint})
    findings = run_checks(plan)
    assert not [f for f in findings if f.check == "bucket" and f.severity == "block"]
    _find(findings, "grant", "info", "ap-east-1.elasticache-snapshot.amazonaws.com")
    s3.put_object(Bucket=bucket, Key=plan.object_key, Body=b"REDIS0010")
    obj = StagedObject(bucket, plan.object_key, 9, "x", "e", 10, "REDIS", True)

    grant_read(plan, obj)
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy_allows(policy, bucket, plan.object_key, "ap-east-1")


def test_group_of_another_migration_is_refused(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any) -> None:
    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    gid = f"taken-{free_port()}"
    ec.create_replication_group(ReplicationGroupId=gid, ReplicationGroupDescription="theirs",
                                Engine="redis", CacheNodeType="cache.t4g.small", NumCacheClusters=1,
                                Tags=[{"Key": "migration-id", "Value": "someone-else"}])
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"kind": "elasticache", "replication_group_id": gid})
    f = _find(run_checks(plan), "target", "block", "is not this migration's")
    assert "someone-else" in f.seen


@pytest.mark.parametrize("engine,version,offered,severity", [
    ("redis", "7.1", ["7.0.7", "7.1.0"], "info"), ("redis", "7.1", ["6.2.6", "7.0.7"], "block"),
    ("valkey", "9.0", ["7.2.6", "8.0.1", "8.1.0", "9.0.0"], "info"), ("valkey", "9.1", ["8.1.0", "9.0.0"], "block"),
])
def test_engine_version_offered(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any,
                                engine: str, version: str, offered: list[str], severity: str) -> None:
    """describe_cache_engine_versions through botocore's Stubber (moto lacks it; the Stubber checks the request)."""
    from elasticache_migrate.preflight import aws_checks

    client = boto3.client("elasticache", region_name=REGION)
    stub = Stubber(client)
    stub.add_response("describe_cache_engine_versions",
                      {"CacheEngineVersions": [{"Engine": engine, "EngineVersion": v} for v in offered]},
                      {"Engine": engine})
    stub.activate()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"kind": "elasticache", "replication_group_id": "free-id", "engine": engine,
                             "engine_version": version})
    findings = aws_checks._engine_version_offered(client, plan)
    assert findings[0].severity == severity
    if severity == "block":
        assert ", ".join(offered) in findings[0].seen
    stub.assert_no_pending_responses()


def test_a_missing_config_key_blocks_unless_the_plan_creates_it(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                source: Any) -> None:
    """A misspelled SSM parameter or env key would be created by the switch and never read by the app."""
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"/app/{free_port()}/redis_url"
    ssm.put_parameter(Name=name, Value="redis://old-redis:6379/0", Type="String")
    env = tmp_path / "app.env"
    env.write_text("APP_ENV=production\nREDIS_URL=redis://old-redis:6379/0\n")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"backend": "ssm", "ssm_parameter": name}, "info", "currently redis://old-redis:6379/0"),
        ({"backend": "ssm", "ssm_parameter": name + "_typo"}, "block", "does not exist"),
        ({"backend": "ssm", "ssm_parameter": name + "_typo", "create_if_missing": True}, "info", "(absent)"),
        ({"backend": "dotenv", "dotenv_path": str(env)}, "info", "currently redis://old-redis:6379/0"),
        ({"backend": "dotenv", "dotenv_path": str(env), "dotenv_key": "REDIS_URI"}, "block", "does not exist"),
    ]
    for cutover, severity, seen in cases:
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                         cutover=cutover)
        f = _find(run_checks(plan), "cutover", severity, seen)
        if severity == "block":
            assert "create_if_missing" in f.todo
    assert ssm.get_parameters(Names=[name + "_typo"])["InvalidParameters"] == [name + "_typo"]  # nothing created


# --- reachability (issue 11, item 12): the target's security groups, read from moto's EC2 -------------------------


def _network_plan(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any, net: Network, **target: Any) -> Any:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     target={"kind": "elasticache", "replication_group_id": f"g{free_port()}",
                             "subnet_group": net.subnet_group, **target})


def _network(findings: list[Any]) -> list[Any]:
    return [f for f in findings if f.check == "network"]


def test_security_groups_that_admit_the_app_and_the_worker_pass(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                 source: Any) -> None:
    net = make_network(moto_endpoint, REGION)
    plan = _network_plan(tmp_path, moto_endpoint, bucket, source, net, security_group_ids=[net.redis_group],
                         app_sources=["10.0.1.0/24", "10.0.2.17"], worker_source=net.worker_group)
    found = _network(run_checks(plan))
    assert [f.severity for f in found] == ["info"] * 5, found
    assert f"cache subnet group {net.subnet_group} exists in {net.vpc_id}" in found[0].seen
    assert found[2].seen == (f"the app (10.0.1.0/24) may connect to port 6379: {net.redis_group} admits it "
                             "(tcp 6379-6379)")
    assert found[4].seen.startswith(f"this worker ({net.worker_group}) may connect to port 6379")


def test_a_group_without_a_rule_for_the_app_blocks_with_the_rule_to_add(tmp_path: Path, moto_endpoint: str,
                                                                         bucket: str, source: Any) -> None:
    net = make_network(moto_endpoint, REGION)
    plan = _network_plan(tmp_path, moto_endpoint, bucket, source, net, security_group_ids=[net.closed_group],
                         app_sources=["10.0.1.0/24"], worker_source="10.0.2.5/32")
    blocks = [f for f in _network(run_checks(plan)) if f.severity == "block"]
    assert [f.todo for f in blocks] == [
        f"aws ec2 authorize-security-group-ingress --group-id {net.closed_group} --protocol tcp --port 6379 "
        "--cidr 10.0.1.0/24",
        f"aws ec2 authorize-security-group-ingress --group-id {net.closed_group} --protocol tcp --port 6379 "
        "--cidr 10.0.2.5/32"]
    assert "the app could not reach the new cluster" in blocks[0].seen
    # the rule the remedy names, added for real, lets both through
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    for cidr in ("10.0.1.0/24", "10.0.2.5/32"):
        ec2.authorize_security_group_ingress(GroupId=net.closed_group, IpProtocol="tcp", FromPort=6379, ToPort=6379,
                                             CidrIp=cidr)
    assert not [f for f in _network(run_checks(plan)) if f.severity == "block"]


def test_a_group_of_another_vpc_blocks(tmp_path: Path, moto_endpoint: str, bucket: str, source: Any) -> None:
    net = make_network(moto_endpoint, REGION)
    plan = _network_plan(tmp_path, moto_endpoint, bucket, source, net, security_group_ids=[net.other_vpc_group],
                         app_sources=["10.0.1.0/24"], worker_source="10.0.2.5/32")
    f = _find(run_checks(plan), "network", "block", f"security group {net.other_vpc_group} is in ")
    assert f"the cache subnet group {net.subnet_group} is in {net.vpc_id}" in f.seen
