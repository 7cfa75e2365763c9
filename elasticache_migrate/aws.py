"""The AWS seam: boto3 clients built from the plan, and botocore's exceptions mapped by class to the error tree.

Credentials come from boto3's own chain (instance profile, ``AWS_PROFILE``, environment), never from the plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from elasticache_migrate.errors import MigrationError, boundary
from elasticache_migrate.plan import MigrationPlan

__all__ = ["aws_client", "aws_errors", "error_code", "translate_aws", "RETRYABLE_CODES", "NOT_FOUND_CODES"]

RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown", "InternalError",
    "ServiceUnavailable", "RequestTimeout", "InternalFailure",
})
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})  # an object that is not there (a missing bucket is not)

_REMEDIES = {
    "NoSuchBucket": "create the bucket (same region as the target) or fix staging.bucket",
    "AccessDenied": "give the caller the permissions listed in the README (AWS credentials and IAM)",
    "AccessControlListNotSupported": (
        "the bucket has ACLs disabled (Object Ownership: BucketOwnerEnforced); set it to BucketOwnerPreferred "
        "or use a staging bucket that allows ACLs"
    ),
    "PermanentRedirect": "the bucket is in another region: use a bucket in the target's region",
    "AuthorizationHeaderMalformed": "the bucket is in another region: use a bucket in the target's region",
    "InvalidAccessKeyId": "check the AWS credentials (AWS_PROFILE / AWS_ACCESS_KEY_ID) of the worker",
    "ExpiredToken": "refresh the worker's AWS credentials",
}
_TRANSIENT = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def aws_client(plan: MigrationPlan, service: str) -> Any:
    """A boto3 client for ``service`` in the plan's region (with the plan's endpoint override, if any).

    boto3's own retry mode "standard" handles throttling with backoff; credentials are never in the plan.
    """
    cfg = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)
    return boto3.client(service, region_name=plan.aws.region, endpoint_url=plan.aws.endpoint_url, config=cfg)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` ("NoSuchBucket", "404"), else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def translate_aws(exc: Exception, step: str, error: type[MigrationError], prefix: str) -> MigrationError | None:
    """botocore/boto3 exceptions → the error tree, by class (and, for ``ClientError``, by AWS's error code)."""
    if isinstance(exc, S3UploadFailedError):
        # boto3's transfer layer re-raises botocore's ClientError as S3UploadFailedError, keeping it only as the
        # context: classify by that error, or a SlowDown that outlasted botocore's retries would count as final.
        inner = exc.__cause__ or exc.__context__
        if isinstance(inner, Exception):
            return translate_aws(inner, step, error, prefix)
        return error(f"{prefix}S3 upload failed: {exc}", step=step, retryable=False)
    if isinstance(exc, ClientError):
        code = error_code(exc)
        msg = str(exc.response.get("Error", {}).get("Message", exc))
        return error(f"{prefix}AWS said {code}: {msg}", remedy=_REMEDIES.get(code), step=step,
                     retryable=code in RETRYABLE_CODES)
    if isinstance(exc, _TRANSIENT):
        return error(f"{prefix}cannot reach AWS ({type(exc).__name__}): {exc}", step=step, retryable=True,
                     remedy="check aws.region / aws.endpoint_url and the worker's network route to AWS")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return error(f"{prefix}no usable AWS credentials: {exc}", step=step, retryable=False,
                     remedy="give the worker AWS credentials (instance profile, AWS_PROFILE or the environment)")
    if isinstance(exc, ResponseParserError):  # an HTML error page instead of the API's answer (a proxy, an outage)
        return error(f"{prefix}AWS answered with something that is not the API's reply: {exc}", step=step,
                     retryable=True, remedy="check aws.endpoint_url and any proxy between the worker and AWS")
    if isinstance(exc, BotoCoreError):
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=False)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=True)
    return None


@contextlib.contextmanager
def aws_errors(step: str, error: type[MigrationError], what: str = "") -> Iterator[None]:
    """Map botocore/boto3 exceptions raised inside the block to ``error`` (see :func:`translate_aws`)."""
    with boundary(translate_aws, step, error, what):
        yield
