"""The ElastiCache target (elasticache_migrate.targets.elasticache.ElastiCacheTarget) against moto's server; a
Stubber for what moto lacks.

What these tests can show: the create_replication_group request exactly as botocore serializes it for the
wire (captured with a ``before-call`` hook on boto3's default session, which every ``boto3.client()`` of
elasticache_migrate/aws.py copies its events from), the adoption of a group an earlier run of the same migration made,
the refusal of a group another migration owns, and the endpoint taken from describe_replication_groups.

What they cannot show: a restore. moto never reads ``SnapshotArns`` (no RDB is loaded anywhere), reports
``available`` the moment the group is created, and hands out endpoints that are fake hostnames nobody
listens on. The status sequence of a real seed (creating → modifying → available, or restore-failed when
the data does not fit the node) is played by ``botocore.stub.Stubber``, which checks every request against
the real ElastiCache API model and every canned reply against its output shape.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import elasticache_migrate.targets.elasticache as ec_module
from elasticache_migrate.errors import ProvisioningError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import Endpoint
from elasticache_migrate.state import StagedObject
from elasticache_migrate.targets import TargetHandle
from elasticache_migrate.targets.elasticache import ElastiCacheTarget
from tests.conftest import REGION, make_plan

LOG = logging.getLogger("t")
NO_AWS = "http://127.0.0.1:9"  # the Stubber tests send nothing anywhere; the plan just needs an endpoint
BUCKET, KEY = "bucket", "key"


def group_id() -> str:
    """A fresh replication group id: moto's server lives for the whole session."""
    return f"rg-{uuid.uuid4().hex[:12]}"


def plan_for(tmp_path: Path, moto_endpoint: str, gid: str, **target: Any) -> MigrationPlan:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=BUCKET, source_port=6379,
                     target={"kind": "elasticache", "replication_group_id": gid, "engine": "redis",
                             "engine_version": "7.1", "node_type": "cache.r7g.large", "replicas": 2,
                             "subnet_group": "cache-private", "security_group_ids": ["sg-0a1b2c", "sg-0d4e5f"],
                             "tags": {"team": "payments", "env": "prod"}, "wait_delay_seconds": 1,
                             "wait_max_attempts": 5, **target})


def staged() -> StagedObject:
    return StagedObject(bucket=BUCKET, key=KEY, size=1234, sha256="0" * 64, etag="e", rdb_version=10,
                        magic="REDIS", uploaded=True)


@pytest.fixture
def wire() -> Iterator[list[dict[str, Any]]]:
    """Every CreateReplicationGroup request body, as serialized for the wire (query protocol, flattened)."""
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params["body"]))

    events = boto3._get_default_session().events
    event = "before-call.elasticache.CreateReplicationGroup"
    events.register(event, capture)
    yield sent
    events.unregister(event, capture)


def indexed(body: dict[str, Any], prefix: str) -> list[str]:
    """The values of a flattened query list: ``Prefix.1``, ``Prefix.2`` …"""
    out, i = [], 1
    while f"{prefix}.{i}" in body:
        out.append(body[f"{prefix}.{i}"])
        i += 1
    return out


def wire_tags(body: dict[str, Any]) -> dict[str, str]:
    keys = indexed({k[: -len(".Key")]: v for k, v in body.items() if k.endswith(".Key")}, "Tags.Tag")
    values = indexed({k[: -len(".Value")]: v for k, v in body.items() if k.endswith(".Value")}, "Tags.Tag")
    return dict(zip(keys, values, strict=True))


def test_create_sends_seeded_request(tmp_path: Path, moto_endpoint: str, wire: list[dict[str, Any]]) -> None:
    """The request as sent. moto accepts SnapshotArns but never reads the object: no restore is shown here."""
    gid = group_id()
    plan = plan_for(tmp_path, moto_endpoint, gid)

    handle = ElastiCacheTarget().create(plan, staged(), LOG)

    assert handle == TargetHandle(kind="elasticache", id=gid, adopted=False)
    assert len(wire) == 1
    body = wire[0]
    assert indexed(body, "SnapshotArns.SnapshotArn") == ["arn:aws:s3:::bucket/key"]
    assert body["ReplicationGroupId"] == gid
    assert (body["Engine"], body["EngineVersion"], body["CacheNodeType"]) == ("redis", "7.1", "cache.r7g.large")
    assert str(body["NumCacheClusters"]) == "3"  # 2 replicas + the primary (urlencoded as text)
    assert body["CacheSubnetGroupName"] == "cache-private"
    assert indexed(body, "SecurityGroupIds.SecurityGroupId") == ["sg-0a1b2c", "sg-0d4e5f"]
    tags = wire_tags(body)
    assert tags["migration-id"] == plan.migration_id
    assert (tags["team"], tags["env"]) == ("payments", "prod")
    assert "AuthToken" not in body

    # moto kept the tags: this is what a later run reads to decide whether it may adopt the group.
    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    arn = ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]["ARN"]
    got = {t["Key"]: t["Value"] for t in ec.list_tags_for_resource(ResourceName=arn)["TagList"]}
    assert got["migration-id"] == plan.migration_id


def test_auth_token_sent_but_never_logged(tmp_path: Path, moto_endpoint: str, wire: list[dict[str, Any]],
                                          monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    token = "tok-" + uuid.uuid4().hex  # ElastiCache wants 16–128 printable characters
    monkeypatch.setenv("TARGET_AUTH_TOKEN", token)
    plan = plan_for(tmp_path, moto_endpoint, group_id(), transit_encryption=True,
                    auth_token_secret="env:TARGET_AUTH_TOKEN")

    with caplog.at_level(logging.DEBUG, logger="t"):
        ElastiCacheTarget().create(plan, staged(), LOG)

    assert wire[0]["AuthToken"] == token
    assert wire[0]["TransitEncryptionEnabled"] == "true"
    assert caplog.records, "create logs what it is doing"
    assert token not in caplog.text


def test_second_create_adopts(tmp_path: Path, moto_endpoint: str, wire: list[dict[str, Any]],
                              caplog: pytest.LogCaptureFixture) -> None:
    gid = group_id()
    plan = plan_for(tmp_path, moto_endpoint, gid)
    target = ElastiCacheTarget()
    first = target.create(plan, staged(), LOG)

    with caplog.at_level(logging.INFO, logger="t"):
        again = target.create(plan, staged(), LOG)

    assert first.adopted is False
    assert again == TargetHandle(kind="elasticache", id=gid, adopted=True)
    assert len(wire) == 1, "no second CreateReplicationGroup call"
    assert f"adopting replication group {gid}" in caplog.text


def test_group_of_another_migration_is_refused(tmp_path: Path, moto_endpoint: str,
                                               wire: list[dict[str, Any]]) -> None:
    gid = group_id()
    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    ec.create_replication_group(ReplicationGroupId=gid, ReplicationGroupDescription="someone else's",
                                Engine="redis", CacheNodeType="cache.t4g.small",
                                Tags=[{"Key": "migration-id", "Value": "billing-2023"}])
    plan = plan_for(tmp_path, moto_endpoint, gid)
    sent_before = len(wire)  # the setup's own create above went through the hook too

    with pytest.raises(ProvisioningError) as ei:
        ElastiCacheTarget().create(plan, staged(), LOG)

    err = ei.value
    assert f"replication group {gid} already exists" in err.message
    assert "'billing-2023'" in err.message
    assert err.remedy == "choose another target.replication_group_id, or delete that group"
    assert err.step == "create"
    assert len(wire) == sent_before  # no create: the other migration's group was not touched


def test_untagged_group_is_refused(tmp_path: Path, moto_endpoint: str) -> None:
    gid = group_id()
    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    ec.create_replication_group(ReplicationGroupId=gid, ReplicationGroupDescription="hand-made",
                                Engine="redis", CacheNodeType="cache.t4g.small")
    plan = plan_for(tmp_path, moto_endpoint, gid)
    with pytest.raises(ProvisioningError, match="tag is None"):
        ElastiCacheTarget().create(plan, staged(), LOG)


def test_wait_available_returns_reported_endpoint(tmp_path: Path, moto_endpoint: str) -> None:
    """moto never reads SnapshotArns, says 'available' at once, and its endpoint is a fake hostname nobody
    listens on: this shows the request and adoption logic end in the endpoint describe_replication_groups
    reports, not that anything was restored or is reachable (the Stubber tests below play the statuses)."""
    gid = group_id()
    plan = plan_for(tmp_path, moto_endpoint, gid)
    target = ElastiCacheTarget()
    handle = target.create(plan, staged(), LOG)

    ep = target.wait_available(plan, handle, LOG)

    ec = boto3.client("elasticache", region_name=REGION, endpoint_url=moto_endpoint)
    reported = ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]
    primary = reported["NodeGroups"][0]["PrimaryEndpoint"]
    assert ep == Endpoint(primary["Address"], int(primary["Port"]), False)
    assert gid in ep.host


# ---- Stubber: the status sequences moto cannot produce ------------------------------------------------------------

@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stubber, list[float]]]:
    """An elasticache client whose replies are canned (requests still validated against the real API model),
    handed to elasticache_migrate.targets.elasticache in place of aws_client();
    sleeps between polls are recorded, not slept."""
    client = boto3.client("elasticache", region_name=REGION)
    sleeps: list[float] = []
    monkeypatch.setattr(ec_module, "aws_client", lambda plan, service: client)
    monkeypatch.setattr(ec_module, "time", SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic))
    with Stubber(client) as stub:
        yield stub, sleeps
        stub.assert_no_pending_responses()


def describe_reply(stub: Stubber, gid: str, status: str, primary: str | None = None) -> None:
    group: dict[str, Any] = {"ReplicationGroupId": gid, "Status": status}
    if primary:
        group["NodeGroups"] = [{"NodeGroupId": "0001", "Status": status,
                                "PrimaryEndpoint": {"Address": primary, "Port": 6379}}]
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": gid})


def test_restore_failed_stops_the_wait(tmp_path: Path, stubbed: tuple[Stubber, list[float]],
                                       caplog: pytest.LogCaptureFixture) -> None:
    stub, sleeps = stubbed
    gid = group_id()
    plan = plan_for(tmp_path, NO_AWS, gid)
    for status in ("creating", "modifying", "restore-failed"):
        describe_reply(stub, gid, status)

    with caplog.at_level(logging.INFO, logger="t"), pytest.raises(ProvisioningError) as ei:
        ElastiCacheTarget().wait_available(plan, TargetHandle("elasticache", gid, False), LOG)

    err = ei.value
    assert "restore-failed" in err.message
    assert "larger target.node_type" in err.remedy
    assert err.step == "wait-available"
    assert sleeps == [1, 1]  # polled at target.wait_delay_seconds, and no poll after the failure
    for status in ("creating", "modifying", "restore-failed"):  # the operator sees each status change
        assert f"{gid}: {status}" in caplog.text


def test_creating_then_available_returns_primary(tmp_path: Path, stubbed: tuple[Stubber, list[float]]) -> None:
    stub, sleeps = stubbed
    gid = group_id()
    plan = plan_for(tmp_path, NO_AWS, gid, transit_encryption=True)
    host = f"master.{gid}.abc123.use1.cache.amazonaws.com"
    describe_reply(stub, gid, "creating")
    describe_reply(stub, gid, "available", host)   # the waiter's poll that succeeds
    describe_reply(stub, gid, "available", host)   # the final describe that reads the endpoint

    ep = ElastiCacheTarget().wait_available(plan, TargetHandle("elasticache", gid, False), LOG)

    assert ep == Endpoint(host, 6379, True)
    assert sleeps == [1]


def test_gives_up_after_max_attempts(tmp_path: Path, stubbed: tuple[Stubber, list[float]]) -> None:
    stub, sleeps = stubbed
    gid = group_id()
    plan = plan_for(tmp_path, NO_AWS, gid, wait_max_attempts=3)
    for _ in range(3):
        describe_reply(stub, gid, "creating")

    with pytest.raises(ProvisioningError) as ei:
        ElastiCacheTarget().wait_available(plan, TargetHandle("elasticache", gid, False), LOG)

    assert "not available after 3 x 1s (last status creating)" in ei.value.message
    assert "wait_max_attempts" in ei.value.remedy
    assert ei.value.retryable is False
    assert sleeps == [1, 1]


def test_group_seeded_from_another_snapshot_is_not_adopted(tmp_path: Path, moto_endpoint: str,
                                                           wire: list[dict[str, Any]]) -> None:
    """A re-run after the source changed has a new snapshot: the group an earlier run seeded holds stale data and
    cannot be re-seeded, so it is refused with the remedy instead of adopted (moto keeps the tags we send)."""
    gid = group_id()
    plan = plan_for(tmp_path, moto_endpoint, gid)
    first = staged()
    ElastiCacheTarget().create(plan, first, LOG)
    assert wire_tags(wire[0])["snapshot-sha256"] == first.sha256
    newer = StagedObject(bucket=BUCKET, key=KEY, size=1234, sha256="1" * 64, etag="e", rdb_version=10,
                         magic="REDIS", uploaded=True)
    with pytest.raises(ProvisioningError, match="seeded by an earlier run from another snapshot") as err:
        ElastiCacheTarget().create(plan, newer, LOG)
    assert f"delete replication group {gid}" in err.value.remedy
    assert ElastiCacheTarget().create(plan, first, LOG).adopted   # the same snapshot is still adopted
