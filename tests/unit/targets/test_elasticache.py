"""The ElastiCache target's pure half: the create_replication_group request for a plan, the slot ranges of its
shards, the parameter group family of an engine version, and the endpoint clients should use."""

from __future__ import annotations

import pytest

from elasticache_migrate.source.connection import Endpoint
from elasticache_migrate.targets.elasticache import (
    build_replication_group_request,
    parameter_group_family,
    primary_endpoint,
    slot_ranges,
)
from tests.support.plans import MID, plan


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 90, 500])
def test_slot_ranges_cover_all_slots_once(shards: int) -> None:
    ranges = [tuple(int(x) for x in r.split("-")) for r in slot_ranges(shards)]
    assert len(ranges) == shards
    assert ranges[0][0] == 0 and ranges[-1][1] == 16383
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert start == end + 1
    sizes = [end - start + 1 for start, end in ranges]
    assert sum(sizes) == 16384 and max(sizes) - min(sizes) <= 1


def test_slot_ranges_values() -> None:
    assert slot_ranges(1) == ["0-16383"]
    assert slot_ranges(3) == ["0-5461", "5462-10922", "10923-16383"]
    with pytest.raises(ValueError):
        slot_ranges(0)


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [("redis", "7.1", "redis7"), ("redis", "7.0", "redis7"), ("redis", "6.2", "redis6.x"),
     ("redis", "5.0.6", "redis5.0"), ("redis", "4.0.10", "redis4.0"), ("valkey", "7.2", "valkey7"),
     ("valkey", "8.0", "valkey8")],
)
def test_parameter_group_family(engine: str, version: str, family: str) -> None:
    assert parameter_group_family(engine, version) == family


ARN = "arn:aws:s3:::stage/redis-migrations/orders-2024/dump.rdb"


def test_request_cluster_mode_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EC_TOKEN", "s3cret-token-value-123")
    p = plan(target={"replication_group_id": "app-cache", "engine": "redis", "engine_version": "7.1",
                     "node_type": "cache.r7g.xlarge", "replicas": 2, "multi_az": True,
                     "subnet_group": "cache-subnets", "security_group_ids": ["sg-1", "sg-2"],
                     "tags": {"team": "payments", "migration-id": "spoofed"},
                     "transit_encryption": True, "auth_token_secret": "env:EC_TOKEN"})
    req = build_replication_group_request(p, ARN)
    assert req["ReplicationGroupId"] == "app-cache"
    assert req["SnapshotArns"] == [ARN]
    assert req["NumCacheClusters"] == 3
    assert req["CacheNodeType"] == "cache.r7g.xlarge"
    assert (req["Engine"], req["EngineVersion"]) == ("redis", "7.1")
    assert req["AutomaticFailoverEnabled"] is True and req["MultiAZEnabled"] is True
    assert req["TransitEncryptionEnabled"] is True
    assert req["CacheSubnetGroupName"] == "cache-subnets"
    assert req["SecurityGroupIds"] == ["sg-1", "sg-2"]
    tags = {t["Key"]: t["Value"] for t in req["Tags"]}
    assert tags["migration-id"] == MID  # a user tag cannot spoof the adoption tag
    assert tags["team"] == "payments"
    assert "NodeGroupConfiguration" not in req and "ClusterMode" not in req
    assert "CacheParameterGroupName" not in req  # the engine default
    assert "AuthToken" not in req
    assert "s3cret-token-value-123" not in repr(req)


def test_request_no_replicas_no_failover() -> None:
    req = build_replication_group_request(plan(target={"replication_group_id": "c", "replicas": 0}), ARN)
    assert req["NumCacheClusters"] == 1
    assert req["AutomaticFailoverEnabled"] is False
    assert "CacheSubnetGroupName" not in req and "SecurityGroupIds" not in req


def test_request_cluster_mode_on() -> None:
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "shards": 3, "replicas": 1,
                     "engine_version": "7.1"})
    req = build_replication_group_request(p, ARN)
    assert req["ClusterMode"] == "enabled"
    assert req["NumNodeGroups"] == 3
    assert [g["Slots"] for g in req["NodeGroupConfiguration"]] == slot_ranges(3)
    assert {g["ReplicaCount"] for g in req["NodeGroupConfiguration"]} == {1}
    assert len({g["NodeGroupId"] for g in req["NodeGroupConfiguration"]}) == 3
    assert req["CacheParameterGroupName"] == "default.redis7.cluster.on"
    assert req["AutomaticFailoverEnabled"] is True
    assert "NumCacheClusters" not in req


def test_request_cluster_mode_on_keeps_named_parameter_group() -> None:
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "parameter_group": "my-params",
                     "engine": "valkey", "engine_version": "8.0"})
    assert build_replication_group_request(p, ARN)["CacheParameterGroupName"] == "my-params"
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "engine": "valkey", "engine_version": "8.0"})
    assert build_replication_group_request(p, ARN)["CacheParameterGroupName"] == "default.valkey8.cluster.on"


def test_primary_endpoint_prefers_configuration_endpoint() -> None:
    group = {
        "ConfigurationEndpoint": {"Address": "clustercfg.c.abc.use1.cache.amazonaws.com", "Port": 6379},
        "NodeGroups": [{"PrimaryEndpoint": {"Address": "master.c.abc.use1.cache.amazonaws.com", "Port": 6379}}],
    }
    assert primary_endpoint(group, tls=True) == Endpoint("clustercfg.c.abc.use1.cache.amazonaws.com", 6379, True)


def test_primary_endpoint_falls_back_to_primary() -> None:
    group = {"NodeGroups": [{"NodeGroupId": "0001"},
                            {"PrimaryEndpoint": {"Address": "master.c.abc.use1.cache.amazonaws.com", "Port": "6380"}}]}
    assert primary_endpoint(group, tls=False) == Endpoint("master.c.abc.use1.cache.amazonaws.com", 6380, False)
    assert primary_endpoint({"Status": "creating", "NodeGroups": []}, tls=False) is None
