"""grant: let ElastiCache read the staged object, keeping every grant that was already there.

Regions launched before 2019-03-20 read through an object ACL grant to ElastiCache's canonical user of
the partition (READ + READ_ACP). Opt-in regions read through a bucket-policy statement whose principal
is the service ``<region>.elasticache-snapshot.amazonaws.com``. Who ElastiCache is and whether a grant lets it
read are in :mod:`elasticache_migrate.staging.grant` (the preflight and the rehearsal target use them too).
"""

from __future__ import annotations

import json
from typing import Any

from prefect import task

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import GrantError, TransferError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.grant import (
    CANONICAL_IDS,
    OPT_IN_REGIONS,
    canonical_id,
    grant_route,
    has_elasticache_grant,
    partition_of,
    policy_allows,
)
from tasks.log import run_logger
from tasks.retry import IO_RETRIES
from tasks.upload import StagedObject

__all__ = [
    "CANONICAL_IDS",
    "OPT_IN_REGIONS",
    "partition_of",
    "canonical_id",
    "grant_route",
    "grant_args",
    "merged_grant_args",
    "has_elasticache_grant",
    "policy_statement",
    "merged_policy",
    "policy_allows",
    "grant",
]

_ARG_FOR = {"FULL_CONTROL": "GrantFullControl", "READ": "GrantRead", "READ_ACP": "GrantReadACP",
            "WRITE": "GrantWrite", "WRITE_ACP": "GrantWriteACP"}


def _grantee(g: dict[str, Any]) -> str:
    """A grantee in the x-amz-grant-* header syntax."""
    t = g.get("Type")
    if t == "CanonicalUser":
        return f'id="{g["ID"]}"'
    if t == "Group":
        return f'uri="{g["URI"]}"'
    if t == "AmazonCustomerByEmail":
        return f'emailAddress="{g["EmailAddress"]}"'
    raise ValueError(f"unknown grantee type {t!r}")


def grant_args(acl: dict[str, Any]) -> dict[str, str]:
    """put_object_acl Grant* arguments that reproduce ``acl`` (a get_object_acl reply)."""
    by_perm: dict[str, list[str]] = {}
    for g in acl.get("Grants", []):
        who = _grantee(g["Grantee"])
        lst = by_perm.setdefault(g["Permission"], [])
        if who not in lst:
            lst.append(who)
    return {_ARG_FOR[p]: ", ".join(v) for p, v in sorted(by_perm.items())}


def merged_grant_args(acl: dict[str, Any], region: str) -> dict[str, str]:
    """Existing grants, the owner's FULL_CONTROL, plus READ and READ_ACP for ElastiCache."""
    grants = list(acl.get("Grants", []))
    owner = (acl.get("Owner") or {}).get("ID")
    extra = [("READ", canonical_id(region)), ("READ_ACP", canonical_id(region))]
    if owner:
        extra.append(("FULL_CONTROL", owner))
    for perm, cid in extra:
        grants.append({"Grantee": {"Type": "CanonicalUser", "ID": cid}, "Permission": perm})
    return grant_args({"Grants": grants})


def policy_statement(bucket: str, key: str, region: str, migration_id: str) -> dict[str, Any]:
    """The bucket-policy statement that lets ElastiCache in an opt-in region read the object."""
    part = partition_of(region)
    return {
        "Sid": f"ElastiCacheSnapshotRead{migration_id.replace('-', '')}"[:100],
        "Effect": "Allow",
        "Principal": {"Service": f"{region}.elasticache-snapshot.amazonaws.com"},
        "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"],
        "Resource": [f"arn:{part}:s3:::{bucket}", f"arn:{part}:s3:::{bucket}/{key}"],
    }


def merged_policy(policy: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    """``policy`` with ``statement`` added (replacing a statement with the same Sid)."""
    base = dict(policy or {"Version": "2012-10-17", "Statement": []})
    stmts = [s for s in base.get("Statement", []) if s.get("Sid") != statement["Sid"]]
    base["Statement"] = [*stmts, statement]
    return base


def _bucket_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket's policy, or None."""
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception as exc:  # noqa: BLE001 - absent policy is normal
        if "NoSuchBucketPolicy" in str(exc):
            return None
        raise


@task(name="grant", **IO_RETRIES)
def grant(plan: MigrationPlan, obj: StagedObject) -> str:
    """Make the staged object readable by ElastiCache, keeping existing grants. Idempotent.

    Returns:
        A one-line description of the grant in force.

    Raises:
        GrantError: the bucket has ACLs disabled, or the grant did not stick.
    """
    log = run_logger()
    s3 = aws_client(plan, "s3")
    region = plan.aws.region
    route = grant_route(region)
    with aws_errors("grant", TransferError, obj.uri):
        if route == "policy":
            stmt = policy_statement(obj.bucket, obj.key, region, plan.migration_id)
            policy = _bucket_policy(s3, obj.bucket)
            if not policy_allows(policy, obj.bucket, obj.key, region):
                s3.put_bucket_policy(Bucket=obj.bucket, Policy=json.dumps(merged_policy(policy, stmt)))
            if not policy_allows(_bucket_policy(s3, obj.bucket), obj.bucket, obj.key, region):
                raise GrantError(f"bucket policy of {obj.bucket} does not let ElastiCache read {obj.key}",
                                 step="grant")
            done = f"bucket policy: {stmt['Principal']['Service']} may s3:GetObject {obj.uri}"
        else:
            acl = s3.get_object_acl(Bucket=obj.bucket, Key=obj.key)
            if not has_elasticache_grant(acl, region):
                s3.put_object_acl(Bucket=obj.bucket, Key=obj.key, **merged_grant_args(acl, region))
            if not has_elasticache_grant(s3.get_object_acl(Bucket=obj.bucket, Key=obj.key), region):
                raise GrantError(f"the ACL of {obj.uri} still lacks ElastiCache's grant after put_object_acl",
                                 remedy=f"grant READ and READ_ACP to canonical ID {canonical_id(region)} on "
                                 f"{obj.uri} (S3 console → Permissions)", step="grant")
            done = f"object ACL: READ + READ_ACP for ElastiCache ({canonical_id(region)[:12]}…) on {obj.uri}"
    log.info("granted %s", done)
    return done
