"""staging.grant planning: who ElastiCache is in each partition, and grants that keep everything already there."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.staging.grant import (
    CANONICAL_IDS,
    canonical_id,
    grant_args,
    grant_route,
    has_elasticache_grant,
    merged_grant_args,
    merged_policy,
    partition_of,
    policy_allows,
    policy_statement,
)

EC_AWS = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
EC_GOV = "40fa568277ad703bd160f66ae4f83fc9dfdfd06c2f1b5060ca22442ac3ef8be6"
EC_CN = "b14d6a125bdf69854ed8ef2e71d8a20b7c490f252229b806e514966e490b8d83"
OWNER = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
OTHER_ACCOUNT = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def canonical(cid: str, perm: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "CanonicalUser", "ID": cid, "DisplayName": "x"}, "Permission": perm}


def parse_header(value: str) -> list[str]:
    """The grantees of one x-amz-grant-* header value."""
    return [g.strip() for g in value.split(",")]


@pytest.mark.parametrize(
    ("region", "partition", "cid"),
    [
        ("us-east-1", "aws", EC_AWS),
        ("eu-west-1", "aws", EC_AWS),
        ("cn-north-1", "aws-cn", EC_CN),
        ("cn-northwest-1", "aws-cn", EC_CN),
        ("us-gov-west-1", "aws-us-gov", EC_GOV),
    ],
)
def test_canonical_id_per_partition(region: str, partition: str, cid: str) -> None:
    assert partition_of(region) == partition
    assert canonical_id(region) == cid
    assert CANONICAL_IDS[partition] == cid


@pytest.mark.parametrize(
    ("region", "route"),
    [("us-east-1", "acl"), ("eu-central-1", "acl"), ("us-gov-west-1", "acl"), ("ap-east-1", "policy"),
     ("me-south-1", "policy"), ("af-south-1", "policy"), ("eu-south-1", "policy")],
)
def test_grant_route(region: str, route: str) -> None:
    assert grant_route(region) == route


def existing_acl() -> dict[str, Any]:
    """An object ACL as get_object_acl returns it: owner, a public-read group grant, another account."""
    return {
        "Owner": {"ID": OWNER, "DisplayName": "ops"},
        "Grants": [
            canonical(OWNER, "FULL_CONTROL"),
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            canonical(OTHER_ACCOUNT, "READ"),
        ],
    }


def test_merged_grant_args_keeps_existing_and_adds_elasticache() -> None:
    args = merged_grant_args(existing_acl(), "us-east-1")
    assert set(args) == {"GrantFullControl", "GrantRead", "GrantReadACP"}
    assert parse_header(args["GrantFullControl"]) == [f'id="{OWNER}"']
    assert sorted(parse_header(args["GrantRead"])) == sorted(
        [f'uri="{ALL_USERS}"', f'id="{OTHER_ACCOUNT}"', f'id="{EC_AWS}"'])
    assert parse_header(args["GrantReadACP"]) == [f'id="{EC_AWS}"']


def test_merged_grant_args_adds_owner_full_control_when_acl_lacks_it() -> None:
    # Every put_object_acl replaces the whole ACL: without the owner's grant the owner loses access.
    args = merged_grant_args({"Owner": {"ID": OWNER}, "Grants": []}, "us-east-1")
    assert args["GrantFullControl"] == f'id="{OWNER}"'


def test_merged_grant_args_no_duplicates_when_already_granted() -> None:
    acl = existing_acl()
    acl["Grants"] += [canonical(EC_AWS, "READ"), canonical(EC_AWS, "READ_ACP")]
    args = merged_grant_args(acl, "us-east-1")
    for header in args.values():
        grantees = parse_header(header)
        assert len(grantees) == len(set(grantees))
    assert parse_header(args["GrantRead"]).count(f'id="{EC_AWS}"') == 1


def test_merged_grant_args_uses_partition_id() -> None:
    args = merged_grant_args(existing_acl(), "us-gov-west-1")
    assert f'id="{EC_GOV}"' in parse_header(args["GrantRead"])
    assert f'id="{EC_AWS}"' not in args["GrantRead"]


def test_grant_args_email_grantee_and_unknown_type() -> None:
    acl = {"Grants": [{"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@b.c"}, "Permission": "WRITE"}]}
    assert grant_args(acl) == {"GrantWrite": 'emailAddress="a@b.c"'}
    with pytest.raises(ValueError, match="unknown grantee type"):
        grant_args({"Grants": [{"Grantee": {"Type": "Martian"}, "Permission": "READ"}]})


@pytest.mark.parametrize(
    ("perms", "ok"),
    [([], False), (["READ"], False), (["READ_ACP"], False), (["READ", "READ_ACP"], True), (["FULL_CONTROL"], True)],
)
def test_has_elasticache_grant(perms: list[str], ok: bool) -> None:
    acl = existing_acl()
    acl["Grants"] += [canonical(EC_AWS, p) for p in perms]
    assert has_elasticache_grant(acl, "us-east-1") is ok


def test_has_elasticache_grant_wrong_partition_id_does_not_count() -> None:
    acl = {"Grants": [canonical(EC_AWS, "READ"), canonical(EC_AWS, "READ_ACP")]}
    assert has_elasticache_grant(acl, "us-gov-west-1") is False


# ---- bucket policy route (opt-in regions) -------------------------------------------------------------------

def test_policy_statement_shape() -> None:
    s = policy_statement("stage", "p/m-1/dump.rdb", "ap-east-1", "m-1")
    assert s["Effect"] == "Allow"
    assert s["Principal"] == {"Service": "ap-east-1.elasticache-snapshot.amazonaws.com"}
    assert set(s["Action"]) == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"}
    assert s["Resource"] == ["arn:aws:s3:::stage", "arn:aws:s3:::stage/p/m-1/dump.rdb"]
    assert s["Sid"].isalnum()  # S3 rejects a Sid with '-'


def test_merged_policy_from_nothing() -> None:
    s = policy_statement("stage", "k", "ap-east-1", "m-1")
    assert merged_policy(None, s) == {"Version": "2012-10-17", "Statement": [s]}


def test_merged_policy_replaces_same_sid_and_keeps_others() -> None:
    deny_http = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": ["arn:aws:s3:::stage", "arn:aws:s3:::stage/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    old = policy_statement("stage", "old/key", "ap-east-1", "m-1")
    policy = {"Version": "2012-10-17", "Statement": [deny_http, old]}
    new = policy_statement("stage", "new/key", "ap-east-1", "m-1")
    merged = merged_policy(policy, new)
    assert merged["Statement"] == [deny_http, new]
    assert policy["Statement"] == [deny_http, old]  # the input is not modified


def test_policy_allows() -> None:
    s = policy_statement("stage", "k/dump.rdb", "ap-east-1", "m-1")
    assert policy_allows({"Statement": [s]}, "stage", "k/dump.rdb", "ap-east-1") is True
    assert policy_allows({"Statement": [s]}, "stage", "other.rdb", "ap-east-1") is False
    assert policy_allows({"Statement": [s]}, "stage", "k/dump.rdb", "me-south-1") is False
    assert policy_allows({"Statement": [{**s, "Effect": "Deny"}]}, "stage", "k/dump.rdb", "ap-east-1") is False
    assert policy_allows(None, "stage", "k/dump.rdb", "ap-east-1") is False


def test_policy_allows_single_string_fields() -> None:
    s = {"Effect": "Allow",
         "Principal": {"Service": ["x.amazonaws.com", "ap-east-1.elasticache-snapshot.amazonaws.com"]},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::stage/k"}
    assert policy_allows({"Statement": [s]}, "stage", "k", "ap-east-1") is True


def test_policy_allows_tolerates_wildcard_principal() -> None:
    # Buckets commonly carry a Deny statement with "Principal": "*"; reading it must not crash the grant step.
    deny_http = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::stage/*"}
    s = policy_statement("stage", "k", "ap-east-1", "m-1")
    assert policy_allows({"Statement": [deny_http]}, "stage", "k", "ap-east-1") is False
    assert policy_allows({"Statement": [deny_http, s]}, "stage", "k", "ap-east-1") is True
