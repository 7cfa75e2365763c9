"""The error tree, the seams' class-by-class mapping of foreign exceptions into it, and the retry rule."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import boto3.exceptions
import botocore.exceptions
import docker.errors
import pytest
import redis
import requests
from prefect.states import Completed, Failed
from redis._parsers.resp2 import _RESP2Parser

from elasticache_migrate.aws import aws_errors
from elasticache_migrate.containers import docker_errors
from elasticache_migrate.errors import (
    ExtractError,
    MigrationError,
    PlanError,
    ProvisioningError,
    QuiesceError,
    SnapshotError,
    SourceError,
    TransferError,
    is_retryable,
)
from elasticache_migrate.source.connection import redis_errors
from tasks.retry import retry_only_io

# ---- the seams' error mapping (by class) / is_retryable / retry_only_io ------------------------------------------

def client_error(code: str, message: str = "m") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, "PutObject")


Seam = Callable[[str, type[MigrationError], str], AbstractContextManager[None]]


def map_(exc: BaseException, error: type[MigrationError] = TransferError, what: str = "s3://stage/k",
         seam: Seam = aws_errors) -> MigrationError:
    with pytest.raises(MigrationError) as ei, seam("upload", error, what):
        raise exc
    assert ei.value.__cause__ is exc  # nothing hidden
    return ei.value


def test_mapped_no_such_bucket() -> None:
    err = map_(client_error("NoSuchBucket", "The specified bucket does not exist"))
    assert type(err) is TransferError
    assert err.remedy == "create the bucket (same region as the target) or fix staging.bucket"
    assert err.retryable is False
    assert str(err) == ("[upload] s3://stage/k: AWS said NoSuchBucket: The specified bucket does not exist — what to "
                        "do: create the bucket (same region as the target) or fix staging.bucket")


def test_mapped_acls_disabled_names_object_ownership() -> None:
    err = map_(client_error("AccessControlListNotSupported"))
    assert "BucketOwnerPreferred" in err.remedy


@pytest.mark.parametrize("code", ["Throttling", "SlowDown", "RequestTimeout"])
def test_mapped_throttling_is_retryable(code: str) -> None:
    assert map_(client_error(code)).retryable is True


def test_mapped_s3_upload_failed_is_classified_by_the_client_error_inside() -> None:
    try:
        try:
            raise client_error("SlowDown")
        except botocore.exceptions.ClientError as inner:
            raise boto3.exceptions.S3UploadFailedError("Failed to upload: SlowDown") from inner
    except boto3.exceptions.S3UploadFailedError as outer:
        err = map_(outer)
    assert type(err) is TransferError and err.retryable is True and "SlowDown" in err.message


def test_mapped_endpoint_connection_error_is_retryable() -> None:
    err = map_(botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"))
    assert type(err) is TransferError and err.retryable is True


def test_mapped_redis_connection_error_is_retryable() -> None:
    err = map_(redis.ConnectionError("Connection refused"), SourceError, "source", redis_errors)
    assert type(err) is SourceError and err.retryable is True


def test_mapped_redis_auth_error_is_not_retryable() -> None:
    err = map_(redis.AuthenticationError("invalid password"), ProvisioningError, "target", redis_errors)
    assert type(err) is SourceError
    assert err.retryable is False
    assert "password secret" in err.remedy


def test_mapped_redis_wrongpass_response_is_auth() -> None:
    # redis-py's parser turns the server's WRONGPASS reply into its class; the seam maps the class
    reply = _RESP2Parser(65536).parse_error("WRONGPASS invalid username-password pair")
    err = map_(reply, SourceError, "source", redis_errors)
    assert err.retryable is False and "authentication" in err.message


def test_mapped_docker_not_found_is_extract_error() -> None:
    err = map_(docker.errors.NotFound("No such container: web-redis"), SourceError, "container web-redis",
               docker_errors)
    assert type(err) is ExtractError
    assert "container name" in err.remedy and "source.docker_host" in err.remedy


def test_mapped_docker_api_error_is_retryable() -> None:
    response = requests.Response()
    response.status_code = 500
    err = map_(docker.errors.APIError("500 Server Error", response=response), ExtractError, "container",
               docker_errors)
    assert type(err) is ExtractError and err.retryable is True


def test_mapped_keeps_migration_errors_and_fills_step() -> None:
    original = QuiesceError("clients still connected")
    with pytest.raises(QuiesceError) as ei, redis_errors("quiesce", SourceError):
        raise original
    assert ei.value is original and ei.value.step == "quiesce"


@pytest.mark.parametrize("seam", [aws_errors, redis_errors, docker_errors])
def test_an_exception_no_seam_knows_propagates_unchanged_and_is_not_retried(seam: Seam) -> None:
    bug = KeyError("x")
    with pytest.raises(KeyError) as ei, seam("upload", TransferError, "s3://stage/k"):
        raise bug
    assert ei.value is bug and is_retryable(ei.value) is False


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (SourceError("down"), True),
        (TransferError("s3 5xx"), True),
        (PlanError("bad"), False),
        (QuiesceError("clients"), False),
        (SnapshotError("bgsave err"), False),
        (ProvisioningError("restore-failed"), False),
        (ProvisioningError("x", retryable=True), True),
        (ConnectionResetError(), False),   # a foreign exception no seam mapped is a bug: never retried
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


def test_retry_only_io_with_prefect_states() -> None:
    assert retry_only_io(None, None, Failed(data=SourceError("connection reset"))) is True
    assert retry_only_io(None, None, Failed(data=redis.ConnectionError("refused"))) is False  # not mapped: a bug
    assert retry_only_io(None, None, Failed(data=PlanError("bad plan"))) is False
    assert retry_only_io(None, None, Failed(data=ProvisioningError("restore-failed"))) is False
    assert retry_only_io(None, None, Completed(data=42)) is False
