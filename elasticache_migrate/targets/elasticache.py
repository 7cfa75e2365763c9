"""The ElastiCache target: build the create request (pure), create or adopt the group, wait for it.

Nothing after wait-available knows which target it was: both hand back an :class:`Endpoint`.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from elasticache_migrate.aws import aws_client, aws_errors, error_code
from elasticache_migrate.errors import ProvisioningError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.rdb.compat import parse_version
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.connection import Endpoint
from tasks.create import TargetHandle
from elasticache_migrate.state import StagedObject

__all__ = [
    "MIGRATION_TAG",
    "SNAPSHOT_TAG",
    "FAILED_STATUSES",
    "slot_ranges",
    "parameter_group_family",
    "build_replication_group_request",
    "primary_endpoint",
    "ElastiCacheTarget",
    "describe_group",
    "group_tags",
    "group_migration_id",
]

MIGRATION_TAG = "migration-id"
SNAPSHOT_TAG = "snapshot-sha256"
FAILED_STATUSES = frozenset({"create-failed", "restore-failed", "deleting", "deleted", "incompatible-network"})


def slot_ranges(shards: int) -> list[str]:
    """Split the 16384 hash slots into ``shards`` contiguous "start-end" ranges covering 0–16383."""
    if not 1 <= shards <= 16384:
        raise ValueError("shards must be 1..16384")
    base, extra = divmod(16384, shards)
    out, start = [], 0
    for i in range(shards):
        n = base + (1 if i < extra else 0)
        out.append(f"{start}-{start + n - 1}")
        start += n
    return out


def parameter_group_family(engine: str, version: str) -> str:
    """Parameter group family of an engine version: redis7, redis6.x, redis5.0, valkey7, valkey8 …"""
    major, minor = parse_version(version)
    if engine == "valkey":
        return f"valkey{major}"
    if major >= 7:
        return "redis7"
    if major == 6:
        return "redis6.x"
    return f"redis{major}.{minor}"


def build_replication_group_request(plan: MigrationPlan, snapshot_arn: str,
                                    snapshot_sha256: str | None = None) -> dict[str, Any]:
    """The create_replication_group arguments for this plan (no secrets: the AUTH token is added at call time).

    The group is tagged with the migration id and the SHA-256 of the RDB that seeds it, so a later run adopts
    it only if it holds that very snapshot.
    """
    t = plan.target
    tags = {"created-by": "redis-elasticache-migrate", **t.tags, MIGRATION_TAG: plan.migration_id}
    if snapshot_sha256:
        tags[SNAPSHOT_TAG] = snapshot_sha256
    req: dict[str, Any] = {
        "ReplicationGroupId": t.replication_group_id,
        "ReplicationGroupDescription": t.description,
        "Engine": t.engine,
        "EngineVersion": t.engine_version,
        "CacheNodeType": t.node_type,
        "Port": t.port,
        "SnapshotArns": [snapshot_arn],
        "TransitEncryptionEnabled": t.transit_encryption,
        "AtRestEncryptionEnabled": t.at_rest_encryption,
        "AutomaticFailoverEnabled": t.cluster_mode or t.replicas >= 1,
        "MultiAZEnabled": t.multi_az,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }
    if t.cluster_mode:
        req["ClusterMode"] = "enabled"
        req["NumNodeGroups"] = t.shards
        req["NodeGroupConfiguration"] = [
            {"NodeGroupId": f"{i + 1:04d}", "Slots": slots, "ReplicaCount": t.replicas}
            for i, slots in enumerate(slot_ranges(t.shards))
        ]
        req["CacheParameterGroupName"] = t.parameter_group or (
            f"default.{parameter_group_family(t.engine, t.engine_version)}.cluster.on")
    else:
        req["NumCacheClusters"] = t.replicas + 1
        if t.parameter_group:
            req["CacheParameterGroupName"] = t.parameter_group
    if t.subnet_group:
        req["CacheSubnetGroupName"] = t.subnet_group
    if t.security_group_ids:
        req["SecurityGroupIds"] = list(t.security_group_ids)
    return req


def primary_endpoint(group: dict[str, Any], tls: bool) -> Endpoint | None:
    """The endpoint clients should use: configuration endpoint (cluster mode) or the primary's."""
    cfg = group.get("ConfigurationEndpoint")
    if cfg and cfg.get("Address"):
        return Endpoint(cfg["Address"], int(cfg["Port"]), tls)
    for ng in group.get("NodeGroups") or []:
        pe = ng.get("PrimaryEndpoint")
        if pe and pe.get("Address"):
            return Endpoint(pe["Address"], int(pe["Port"]), tls)
    return None


def describe_group(ec: Any, gid: str) -> dict[str, Any] | None:
    """The replication group ``gid`` as DescribeReplicationGroups reports it, None when there is none.

    Raises:
        botocore.exceptions.ClientError: anything but "not found" (map it with ``aws_errors``).
    """
    try:
        return dict(ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0])
    except ClientError as exc:
        if error_code(exc) == "ReplicationGroupNotFoundFault":
            return None
        raise


def group_tags(ec: Any, group: dict[str, Any]) -> dict[str, str]:
    """The group's tags."""
    arn = group.get("ARN")
    if not arn:
        return {}
    return {t["Key"]: t["Value"] for t in ec.list_tags_for_resource(ResourceName=arn).get("TagList", [])}


def group_migration_id(ec: Any, group: dict[str, Any]) -> str | None:
    """The migration id a group was tagged with when this tool created it (None: someone else's)."""
    return group_tags(ec, group).get(MIGRATION_TAG)


class ElastiCacheTarget:
    """Create (or adopt) a replication group seeded from the staged RDB."""

    kind = "elasticache"

    def _describe(self, ec: Any, gid: str) -> dict[str, Any] | None:
        return describe_group(ec, gid)

    def _migration_tag(self, ec: Any, group: dict[str, Any]) -> str | None:
        return group_migration_id(ec, group)

    def create(self, plan: MigrationPlan, obj: StagedObject, log: Any) -> TargetHandle:
        ec = aws_client(plan, "elasticache")
        gid = plan.target.replication_group_id
        with aws_errors("create", ProvisioningError, f"replication group {gid}"):
            existing = self._describe(ec, gid)
            if existing is not None:
                tags = group_tags(ec, existing)
                owner = tags.get(MIGRATION_TAG)
                if owner != plan.migration_id:
                    raise ProvisioningError(
                        f"replication group {gid} already exists and was not made by this migration "
                        f"(its {MIGRATION_TAG} tag is {owner!r})",
                        remedy="choose another target.replication_group_id, or delete that group", step="create")
                seeded = tags.get(SNAPSHOT_TAG)
                if seeded and seeded != obj.sha256:
                    raise ProvisioningError(
                        f"replication group {gid} was seeded by an earlier run from another snapshot "
                        f"(sha256 {seeded[:12]}…, this run's is {obj.sha256[:12]}…): the source changed since",
                        remedy=f"delete replication group {gid} (a group cannot be re-seeded) and re-run, or set a "
                        "new target.replication_group_id", step="create")
                log.info("adopting replication group %s made by an earlier run (status %s)", gid,
                         existing.get("Status"))
                return TargetHandle(kind=self.kind, id=gid, adopted=True)
            req = build_replication_group_request(plan, obj.arn, obj.sha256)
            token = resolve_secret(plan.target.auth_token_secret, purpose="target AUTH token")
            log.info("creating replication group %s: %s %s on %s, seeded from %s", gid, req["Engine"],
                     req["EngineVersion"], req["CacheNodeType"], obj.arn)
            ec.create_replication_group(**req, **({"AuthToken": token} if token else {}))
        return TargetHandle(kind=self.kind, id=gid, adopted=False)

    def delete(self, plan: MigrationPlan, handle: TargetHandle, log: Any) -> None:
        """Delete the replication group (no final snapshot: the source still has the data)."""
        ec = aws_client(plan, "elasticache")
        with aws_errors("delete-target", ProvisioningError, f"replication group {handle.id}"):
            ec.delete_replication_group(ReplicationGroupId=handle.id, RetainPrimaryCluster=False)
        log.warning("deleting replication group %s (target.delete_on_rollback)", handle.id)

    def wait_available(self, plan: MigrationPlan, handle: TargetHandle, log: Any) -> Endpoint:
        """Poll with boto3's ``replication_group_available`` waiter, one attempt at a time, logging each status."""
        ec = aws_client(plan, "elasticache")
        waiter = ec.get_waiter("replication_group_available")
        delay, attempts = plan.target.wait_delay_seconds, plan.target.wait_max_attempts
        last_status = None
        t0 = time.monotonic()
        with aws_errors("wait-available", ProvisioningError, f"replication group {handle.id}"):
            for attempt in range(1, attempts + 1):
                try:
                    waiter.wait(ReplicationGroupId=handle.id, WaiterConfig={"Delay": delay, "MaxAttempts": 1})
                    break
                except WaiterError as exc:
                    last = exc.last_response or {}
                    if "Error" in last:
                        code = last["Error"].get("Code", "?")
                        if code in {"ReplicationGroupNotFoundFault", "ReplicationGroupNotFound"}:
                            raise ProvisioningError(f"replication group {handle.id} disappeared while waiting ({code})",
                                                    remedy="someone deleted it; re-run to create it again",
                                                    step="wait-available") from exc
                    groups = last.get("ReplicationGroups") or [{}]
                    status = groups[0].get("Status", "?")
                    if status != last_status:
                        log.info("t+%4.0fs  %s: %s", time.monotonic() - t0, handle.id, status)
                        last_status = status
                    if status in FAILED_STATUSES or "terminal failure" in str(exc):
                        raise ProvisioningError(
                            f"replication group {handle.id} went to '{status}'",
                            remedy="restore-failed usually means the data does not fit the node: delete the "
                            "group and re-run with a larger target.node_type (only delete-and-recreate fixes it)",
                            step="wait-available") from exc
                    if attempt == attempts:
                        raise ProvisioningError(
                            f"replication group {handle.id} not available after {attempts} x {delay}s "
                            f"(last status {status})",
                            remedy="raise target.wait_max_attempts; big restores take long", step="wait-available",
                            retryable=False) from exc
                    time.sleep(delay)
            group = self._describe(ec, handle.id) or {}
        log.info("t+%4.0fs  %s: available", time.monotonic() - t0, handle.id)
        ep = primary_endpoint(group, plan.target.transit_encryption)
        if ep is None:
            raise ProvisioningError(f"replication group {handle.id} is available but has no endpoint",
                                    step="wait-available")
        return ep
