"""Who ElastiCache is, and whether a grant lets it read the staged object (pure: no I/O).

Regions launched before 2019-03-20 read through an object ACL grant to ElastiCache's canonical user of
the partition (READ + READ_ACP). Opt-in regions read through a bucket-policy statement whose principal
is the service ``<region>.elasticache-snapshot.amazonaws.com``. The grant step, the preflight and the
rehearsal target use the same functions.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CANONICAL_IDS",
    "OPT_IN_REGIONS",
    "partition_of",
    "canonical_id",
    "grant_route",
    "has_elasticache_grant",
    "policy_allows",
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
