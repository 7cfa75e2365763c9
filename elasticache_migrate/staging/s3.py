"""Facts about the staged object in S3: what an upload sends with it, whether an object already is this RDB.

Callers wrap these calls in :func:`elasticache_migrate.aws.aws_errors`; an absent object is told by its error
code (:data:`~elasticache_migrate.aws.NOT_FOUND_CODES`), never by the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from elasticache_migrate.aws import NOT_FOUND_CODES, error_code
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Extracted, StagedObject

__all__ = ["stream_extra_args", "upload_extra_args", "head", "sha_tag", "sha_tags", "already_uploaded",
           "staged_object", "existing_object"]


def stream_extra_args(plan: MigrationPlan, magic: str, rdb_version: int) -> dict[str, Any]:
    """Arguments for an upload whose SHA-256 is not known yet (the streaming paths tag it afterwards)."""
    return {
        "ServerSideEncryption": "AES256",  # SSE-S3: the only encryption ElastiCache can read
        "ChecksumAlgorithm": "SHA256",
        "ACL": "private",  # an explicit owner-only ACL; the grant step adds ElastiCache's read grant
        "Metadata": {"migration-id": plan.migration_id, "rdb-version": f"{magic}{rdb_version}"},
        "ContentType": "application/octet-stream",
    }


def upload_extra_args(plan: MigrationPlan, ex: Extracted) -> dict[str, Any]:
    """Arguments for the upload of a checked local copy: as :func:`stream_extra_args`, plus its SHA-256 and CRC-64
    in the metadata."""
    args = stream_extra_args(plan, ex.magic, ex.rdb_version)
    args["Metadata"].update({"sha256": ex.sha256, "crc64": f"{ex.crc64_computed:016x}"})
    return args


def sha_tags(plan: MigrationPlan, sha256: str) -> list[dict[str, str]]:
    """The tags the streaming paths put on the object once its SHA-256 is known."""
    return [{"Key": "sha256", "Value": sha256}, {"Key": "migration-id", "Value": plan.migration_id}]


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """head_object, or None if the object does not exist.

    Raises:
        botocore.exceptions.ClientError: any other refusal (map it with ``aws_errors``).
    """
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


def sha_tag(s3: Any, bucket: str, key: str) -> str | None:
    """The ``sha256`` tag the streaming paths put on the object (None if absent, or tags may not be read)."""
    try:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    except ClientError:  # no tags, no permission to read them, gone: unknown
        return None
    return next((str(t["Value"]) for t in tags if t["Key"] == "sha256"), None)


def already_uploaded(head: Mapping[str, Any] | None, ex: Extracted, sha_tag: str | None = None) -> bool:
    """Whether an existing object (head_object reply; its ``sha256`` tag if any) is this very file."""
    if not head:
        return False
    meta = {str(k).lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return int(head.get("ContentLength", -1)) == ex.size and ex.sha256 in (meta.get("sha256"), sha_tag)


def staged_object(bucket: str, key: str, head: Mapping[str, Any], ex: Extracted, *, uploaded: bool) -> StagedObject:
    """The staged object as the rest of the run sees it."""
    return StagedObject(bucket, key, ex.size, ex.sha256, str(head.get("ETag", "")).strip('"'), ex.rdb_version,
                        ex.magic, uploaded=uploaded)


def existing_object(s3: Any, plan: MigrationPlan, ex: Extracted) -> StagedObject | None:
    """The plan's object if it already holds this RDB (same size and SHA-256), as not uploaded by this run."""
    bucket, key = plan.staging.bucket, plan.object_key
    found = head(s3, bucket, key)
    if found and already_uploaded(found, ex, sha_tag(s3, bucket, key)):
        return staged_object(bucket, key, found, ex, uploaded=False)
    return None
