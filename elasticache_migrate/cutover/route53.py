"""Config backend: a Route 53 CNAME the app connects to (``redis.internal.example.com``).

The app keeps its URL; the stable name's CNAME is UPSERTed to the new endpoint's host name and the change
is waited on until Route 53 reports it INSYNC on all its name servers (boto3's ``resource_record_sets_changed``
waiter). Clients still see the old answer until their cached one expires: lower ``cutover.route53_ttl``
ahead of the window. A restore puts the old target back with the old TTL, or deletes the record if there was
none. Records with a routing policy (weighted, latency, …) or an alias are refused, not guessed at.
"""

from __future__ import annotations

from typing import Any

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["Route53Cname", "normalize_name", "cname_record", "change_batch"]

WAIT_DELAY_SECONDS = 10  # Route 53 usually reports INSYNC within 60 s
WAIT_MAX_ATTEMPTS = 60


def normalize_name(name: str) -> str:
    """A DNS name as Route 53 compares it: lower case, no trailing dot, ``\\052`` back to ``*``."""
    return name.replace("\\052", "*").rstrip(".").lower()


def cname_record(record_sets: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The CNAME record set named ``name`` among ``list_resource_record_sets`` results, or None.

    Raises:
        ValueError: the name has a CNAME this backend must not touch (alias, routing policy, several values).
    """
    found = [r for r in record_sets if r.get("Type") == "CNAME" and normalize_name(r["Name"]) == normalize_name(name)]
    if not found:
        return None
    if len(found) > 1 or "SetIdentifier" in found[0]:
        raise ValueError(f"{name} has CNAME records with a routing policy (SetIdentifier)")
    record = found[0]
    if "AliasTarget" in record or len(record.get("ResourceRecords", [])) != 1:
        raise ValueError(f"{name} is an alias or has no single CNAME target")
    return record


def change_batch(action: str, name: str, target: str, ttl: int, comment: str) -> dict[str, Any]:
    """A ChangeBatch with one CNAME change."""
    return {"Comment": comment, "Changes": [{"Action": action, "ResourceRecordSet": {
        "Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": target}]}}]}


class Route53Cname:
    """The app connects to a stable DNS name whose CNAME points at the Redis endpoint."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.route53_zone_id and plan.cutover.route53_record
        self.zone_id = plan.cutover.route53_zone_id.removeprefix("/hostedzone/")
        self.name = plan.cutover.route53_record
        self.ttl = plan.cutover.route53_ttl
        self.comment = f"redis-elasticache-migrate {plan.migration_id}"
        self.r53: Any = aws_client(plan, "route53")
        self._seen: dict[str, Any] = {}  # the record last read: its TTL and target as stored
        self._restore: dict[str, Any] = {}

    def describe(self) -> str:
        return f"route53:{self.zone_id}/{normalize_name(self.name)} CNAME"

    def _record(self) -> dict[str, Any] | None:
        with aws_errors("switch-config", CutoverError, self.describe()):
            got = self.r53.list_resource_record_sets(HostedZoneId=self.zone_id, StartRecordName=self.name,
                                                     StartRecordType="CNAME", MaxItems="10")
        try:
            return cname_record(got.get("ResourceRecordSets", []), self.name)
        except ValueError as exc:
            raise CutoverError(str(exc), remedy="point the app at a simple CNAME this tool may rewrite, or "
                               "switch the record by hand (cutover.backend: none)", step="switch-config") from exc

    def read(self) -> str | None:
        record = self._record()
        if record is None:
            self._seen = {}
            return None
        target = str(record["ResourceRecords"][0]["Value"])
        self._seen = {"ttl": int(record.get("TTL", self.ttl)), "target": target}
        return target.rstrip(".")

    def state(self) -> dict[str, Any]:
        return dict(self._seen)

    def use_state(self, state: dict[str, Any]) -> None:
        self._restore = dict(state)

    def write(self, value: str | None) -> None:
        restore, self._restore = self._restore, {}
        if value is None:
            record = self._record()
            if record is None:
                return
            batch = {"Comment": self.comment, "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
        else:
            ttl, target = self.ttl, value
            if restore and str(restore.get("target", "")).rstrip(".") == value:  # the old record, as it was
                ttl, target = int(restore["ttl"]), str(restore["target"])
            batch = change_batch("UPSERT", self.name, target, ttl, self.comment)
        with aws_errors("switch-config", CutoverError, self.describe()):
            change = self.r53.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch=batch)
        self._wait(change["ChangeInfo"]["Id"])

    def _wait(self, change_id: str) -> None:
        """Until every Route 53 name server answers with the change (INSYNC)."""
        from botocore.exceptions import WaiterError

        waiter = self.r53.get_waiter("resource_record_sets_changed")
        try:
            waiter.wait(Id=change_id, WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_MAX_ATTEMPTS})
        except WaiterError as exc:
            raise CutoverError(f"{self.describe()}: change {change_id} not INSYNC after "
                               f"{WAIT_DELAY_SECONDS * WAIT_MAX_ATTEMPTS} s ({exc})",
                               remedy=f"check `aws route53 get-change --id {change_id}`; the record is already "
                               "changed, Route 53 is still propagating it", step="switch-config") from exc
