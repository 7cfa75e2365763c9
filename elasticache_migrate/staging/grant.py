"""Let ElastiCache read the staged object, keeping every grant that was already there.

Regions launched before 2019-03-20 read through an object ACL grant to ElastiCache's canonical user of
the partition (READ + READ_ACP). Opt-in regions read through a bucket-policy statement whose principal
is the service ``<region>.elasticache-snapshot.amazonaws.com``. Who ElastiCache is and whether a grant lets it
read are pure functions here, used by the grant step, the preflight and the rehearsal target; the planners build
the S3 arguments that add ElastiCache's grant to what is there; :func:`grant_read` makes the S3 calls.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from elasticache_migrate.aws import aws_client, aws_errors, error_code
from elasticache_migrate.errors import GrantError, TransferError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import StagedObject

__all__ = [
    "CANONICAL_IDS",
    "OPT_IN_REGIONS",
    "partition_of",
    "canonical_id",
    "grant_route",
    "has_elasticache_grant",
    "policy_allows",
    "grant_args",
    "merged_grant_args",
    "policy_statement",
    "merged_policy",
    "bucket_policy",
    "grant_read",
]

CANONICAL_IDS = {
    "aws": "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353",
    "aws-us-gov": "40fa568277ad703bd160f66ae4f83fc9dfdfd06c2f1b5060ca22442ac3ef8be6",
    # Beijing/Ningxia, from older AWS docs; not re-verified against AWS today.
    "aws-cn": "b14d6a125bdf69854ed8ef2e71d8a20b7c490f252229b806e514966e490b8d83",
}

# Regions launched after 2019-03-20 (opt-in): ElastiCache reads via a bucket policy, not an ACL.
OPT_IN_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2",
    "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
})

_ARG_FOR = {"FULL_CONTROL": "GrantFullControl", "READ": "GrantRead", "READ_ACP": "GrantReadACP",
            "WRITE": "GrantWrite", "WRITE_ACP": "GrantWriteACP"}


def partition_of(region: str) -> str:
    """AWS partition of a region."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def canonical_id(region: str) -> str:
    """ElastiCache's canonical user id for object ACL grants in ``region``'s partition."""
    return CANONICAL_IDS[partition_of(region)]


def grant_route(region: str) -> str:
    """'acl' (object ACL grant) or 'policy' (bucket policy, opt-in regions)."""
    return "policy" if region in OPT_IN_REGIONS else "acl"


def has_elasticache_grant(acl: dict[str, Any], region: str) -> bool:
    """Whether the ACL lets ElastiCache read the object (READ and READ_ACP, or FULL_CONTROL)."""
    cid = canonical_id(region)
    perms = {g["Permission"] for g in acl.get("Grants", [])
             if g.get("Grantee", {}).get("Type") == "CanonicalUser" and g["Grantee"].get("ID") == cid}
    return "FULL_CONTROL" in perms or {"READ", "READ_ACP"} <= perms


def policy_allows(policy: dict[str, Any] | None, bucket: str, key: str, region: str) -> bool:
    """Whether some Allow statement gives ElastiCache's service principal s3:GetObject on the object."""
    principal = f"{region}.elasticache-snapshot.amazonaws.com"
    arn = f"arn:{partition_of(region)}:s3:::{bucket}/{key}"
    for s in (policy or {}).get("Statement", []):
        principal_field = s.get("Principal")  # may be the string "*" (e.g. a DenyInsecureTransport statement)
        svc = principal_field.get("Service") if isinstance(principal_field, dict) else None
        svcs = svc if isinstance(svc, list) else [svc]
        actions = s.get("Action") if isinstance(s.get("Action"), list) else [s.get("Action")]
        res = s.get("Resource") if isinstance(s.get("Resource"), list) else [s.get("Resource")]
        if s.get("Effect") == "Allow" and principal in svcs and "s3:GetObject" in actions and arn in res:
            return True
    return False


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


def bucket_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket's policy, or None when it has none.

    Raises:
        botocore.exceptions.ClientError: any other refusal (map it with ``aws_errors``).
    """
    try:
        policy: dict[str, Any] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucketPolicy":  # an absent policy is normal
            return None
        raise
    return policy


def grant_read(plan: MigrationPlan, obj: StagedObject, log: Log = logger) -> str:
    """Make the staged object readable by ElastiCache, keeping existing grants. Idempotent.

    Returns:
        A one-line description of the grant in force.

    Raises:
        GrantError: the bucket has ACLs disabled, or the grant did not stick.
    """
    s3 = aws_client(plan, "s3")
    region = plan.aws.region
    with aws_errors("grant", TransferError, obj.uri):
        if grant_route(region) == "policy":
            stmt = policy_statement(obj.bucket, obj.key, region, plan.migration_id)
            policy = bucket_policy(s3, obj.bucket)
            if not policy_allows(policy, obj.bucket, obj.key, region):
                s3.put_bucket_policy(Bucket=obj.bucket, Policy=json.dumps(merged_policy(policy, stmt)))
            if not policy_allows(bucket_policy(s3, obj.bucket), obj.bucket, obj.key, region):
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
