"""The engine of the upload card step: the checked local copy to the plan's object (staged path, and a resumed
run whose upload had not finished). Multipart through the one sink, SSE-S3, a SHA-256 checksum per part; skipped
when the object already holds this RDB."""

from __future__ import annotations

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import TransferError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.s3 import existing_object
from elasticache_migrate.staging.sink import upload_copy
from elasticache_migrate.staging.verdict import verdict_for
from elasticache_migrate.state import Extracted, StagedObject

__all__ = ["upload_checked_copy"]


def upload_checked_copy(plan: MigrationPlan, ex: Extracted, log: Log = logger) -> StagedObject:
    """Upload ``ex`` to ``s3://staging.bucket/PREFIX/ID/dump.rdb`` (skipped when already there); journaled.

    The snapshot's verdict comes first (nothing is sent for one that cannot seed the target); the object is
    completed once every part is in.

    Raises:
        TransferError: bucket missing or in another region, access denied, upload failed.
        ExtractError: the local copy is gone or its size changed since it was checked.
        PreflightError: the snapshot cannot seed the target (nothing is visible in S3).
    """
    step = "upload"
    bucket, key = plan.staging.bucket, plan.object_key
    with aws_errors(step, TransferError, f"s3://{bucket}/{key}"):
        there = existing_object(aws_client(plan, "s3"), plan, ex)
    if there is not None:
        log.info("%s already holds this RDB (same size and SHA-256): not uploading again", there.uri)
        Journal(plan.workdir).update(staged=there)
        return there
    staged, stats = upload_copy(plan, ex, log, step=step, verdict=verdict_for(plan, log, step=step))
    log.info("uploaded %s bytes to %s in %.2fs (%.0f MB/s, %d parts, SSE-S3)", ex.size, staged.uri, stats.seconds,
             stats.mb_per_s, stats.parts)
    Journal(plan.workdir).update(staged=staged)
    return staged
