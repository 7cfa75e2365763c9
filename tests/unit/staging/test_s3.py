"""What an upload sends with the object, and whether an object already is this RDB (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from elasticache_migrate.aws import error_code
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.s3 import (
    already_uploaded,
    existing_object,
    head,
    sha_tag,
    sha_tags,
    staged_object,
    stream_extra_args,
    upload_extra_args,
)
from tests.unit.staging.conftest import MID, SHA, extracted


def test_already_uploaded() -> None:
    ex = extracted()
    assert already_uploaded(None, ex) is False
    assert already_uploaded({"ContentLength": 1234, "Metadata": {"sha256": SHA}}, ex) is True
    assert already_uploaded({"ContentLength": 1234, "Metadata": {"SHA256": SHA}}, ex) is True  # header case
    assert already_uploaded({"ContentLength": 1235, "Metadata": {"sha256": SHA}}, ex) is False
    assert already_uploaded({"ContentLength": 1234, "Metadata": {"sha256": "0" * 64}}, ex) is False
    assert already_uploaded({"ContentLength": 1234}, ex) is False  # someone else's object at that key
    assert already_uploaded({"ContentLength": 1234}, ex, SHA) is True  # the streaming paths' tag


def test_upload_extra_args(plan: MigrationPlan) -> None:
    args = upload_extra_args(plan, extracted())
    assert args["ServerSideEncryption"] == "AES256"  # SSE-KMS objects cannot seed ElastiCache
    assert args["ChecksumAlgorithm"] == "SHA256"
    assert args["ACL"] == "private"
    assert args["Metadata"]["migration-id"] == MID
    assert args["Metadata"]["sha256"] == SHA
    assert args["Metadata"]["rdb-version"] == "REDIS10"
    assert args["Metadata"]["crc64"] == "0000000000000abc"


def test_stream_extra_args_carry_no_sha_the_tags_do(plan: MigrationPlan) -> None:
    args = stream_extra_args(plan, "VALKEY", 80)
    assert args["Metadata"] == {"migration-id": MID, "rdb-version": "VALKEY80"}
    assert sha_tags(plan, SHA) == [{"Key": "sha256", "Value": SHA}, {"Key": "migration-id", "Value": MID}]


def _s3() -> Any:
    import boto3

    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_head_and_sha_tag_tell_absent_by_error_code(plan: MigrationPlan) -> None:
    s3 = _s3()
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", "404", "Not Found", 404)
        stub.add_client_error("get_object_tagging", "AccessDenied", "no", 403)
        assert head(s3, "stage", "k") is None
        assert sha_tag(s3, "stage", "k") is None  # tags that cannot be read are unknown, not an error
    with Stubber(s3) as stub, pytest.raises(ClientError) as err:  # a refusal is not an absent object
        stub.add_client_error("head_object", "AccessDenied", "Forbidden", 403)
        head(s3, "stage", "k")
    assert error_code(err.value) == "AccessDenied"  # for aws_errors to map


def test_existing_object_is_this_rdb_by_size_and_sha(plan: MigrationPlan) -> None:
    s3 = _s3()
    ex = extracted()
    with Stubber(s3) as stub:
        stub.add_response("head_object", {"ContentLength": 1234, "ETag": '"abc"', "Metadata": {}})
        stub.add_response("get_object_tagging", {"TagSet": [{"Key": "sha256", "Value": SHA}]})
        got = existing_object(s3, plan, ex)
    assert got == staged_object("stage", plan.object_key, {"ETag": '"abc"'}, ex, uploaded=False)
    assert got is not None and got.etag == "abc" and not got.uploaded
    with Stubber(s3) as stub:
        stub.add_response("head_object", {"ContentLength": 99, "ETag": '"abc"', "Metadata": {"sha256": SHA}})
        stub.add_response("get_object_tagging", {"TagSet": []})
        assert existing_object(s3, plan, ex) is None
