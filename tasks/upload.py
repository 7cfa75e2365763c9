"""upload: put the extracted RDB into the staging bucket, multipart, SSE-S3, with an S3 checksum.

A re-run finds the object already there (same size and SHA-256 in its metadata) and does not upload it
again.
"""

from __future__ import annotations

from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from prefect import task

from elasticache_migrate.aws import NOT_FOUND_CODES, aws_client, aws_errors, error_code
from elasticache_migrate.errors import TransferError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Extracted, StagedObject, object_arn
from tasks.log import run_logger
from tasks.retry import IO_RETRIES

__all__ = ["StagedObject", "object_arn", "stream_extra_args", "upload_extra_args", "already_uploaded", "sha_tag",
           "transfer_config", "upload"]

MiB = 1 << 20


def stream_extra_args(plan: MigrationPlan, magic: str, rdb_version: int) -> dict[str, Any]:
    """Arguments for an upload whose SHA-256 is not known yet (the streaming path tags it afterwards)."""
    return {
        "ServerSideEncryption": "AES256",  # SSE-S3: the only encryption ElastiCache can read
        "ChecksumAlgorithm": "SHA256",
        "ACL": "private",  # an explicit owner-only ACL; the grant step adds ElastiCache's read grant
        "Metadata": {"migration-id": plan.migration_id, "rdb-version": f"{magic}{rdb_version}"},
        "ContentType": "application/octet-stream",
    }


def upload_extra_args(plan: MigrationPlan, ex: Extracted) -> dict[str, Any]:
    """ExtraArgs for the upload: SSE-S3 (the only encryption ElastiCache can read), checksum, metadata."""
    args = stream_extra_args(plan, ex.magic, ex.rdb_version)
    args["Metadata"].update({"sha256": ex.sha256, "crc64": f"{ex.crc64_computed:016x}"})
    return args


def already_uploaded(head: dict[str, Any] | None, ex: Extracted, sha_tag: str | None = None) -> bool:
    """Whether an existing object (head_object reply; its ``sha256`` tag if any) is this very file."""
    if not head:
        return False
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return int(head.get("ContentLength", -1)) == ex.size and ex.sha256 in (meta.get("sha256"), sha_tag)


def sha_tag(s3: Any, bucket: str, key: str) -> str | None:
    """The ``sha256`` tag the streaming path puts on the object (None if absent)."""
    try:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    except Exception:  # noqa: BLE001 - no tags / no permission: treat as unknown
        return None
    return next((t["Value"] for t in tags if t["Key"] == "sha256"), None)


def transfer_config(size: int) -> TransferConfig:
    """Multipart settings: 64 MiB parts (at most 10,000 parts: bigger parts for huge files), 4 in flight."""
    part = max(64 * MiB, -(-size // 9000))
    return TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=part, max_concurrency=4,
                          use_threads=True)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """head_object, or None if the object does not exist."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:  # 404 means absent; anything else is re-raised
        if error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


@task(name="upload", **IO_RETRIES)
def upload(plan: MigrationPlan, ex: Extracted) -> StagedObject:
    """Upload the RDB to ``s3://staging.bucket/PREFIX/ID/dump.rdb`` (skipped when already there).

    Raises:
        TransferError: bucket missing or in another region, access denied, upload failed.
    """
    log = run_logger()
    s3 = aws_client(plan, "s3")
    bucket, key = plan.staging.bucket, plan.object_key
    with aws_errors("upload", TransferError, f"s3://{bucket}/{key}"):
        head = _head(s3, bucket, key)
        if already_uploaded(head, ex, sha_tag(s3, bucket, key) if head else None):
            assert head is not None
            log.info("s3://%s/%s already holds this RDB (same size and SHA-256): not uploading again", bucket, key)
            staged = StagedObject(bucket, key, ex.size, ex.sha256, str(head.get("ETag", "")).strip('"'),
                                  ex.rdb_version, ex.magic, uploaded=False)
            Journal(plan.workdir).update(staged=staged)
            return staged
        s3.upload_file(ex.path, bucket, key, ExtraArgs=upload_extra_args(plan, ex), Config=transfer_config(ex.size))
        head = _head(s3, bucket, key)
    if not already_uploaded(head, ex):
        raise TransferError(f"s3://{bucket}/{key} does not match the local RDB after upload",
                            remedy="re-run; if it persists, check for another writer of that key", step="upload",
                            retryable=True)
    assert head is not None
    log.info("uploaded %s bytes to s3://%s/%s (SSE %s)", ex.size, bucket, key, head.get("ServerSideEncryption"))
    staged = StagedObject(bucket, key, ex.size, ex.sha256, str(head.get("ETag", "")).strip('"'), ex.rdb_version,
                          ex.magic, uploaded=True)
    Journal(plan.workdir).update(staged=staged)
    return staged
