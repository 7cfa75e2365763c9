"""upload: the checked local copy to the staging bucket (staged path, and a resumed run whose upload had not
finished): multipart through the one sink, SSE-S3, a SHA-256 per part, skipped when the object is already there.
The engine is :mod:`elasticache_migrate.staging.upload`."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.upload import upload_checked_copy
from elasticache_migrate.state import Extracted, StagedObject
from tasks.retry import IO_RETRIES

__all__ = ["upload"]


@task(name="upload", **IO_RETRIES)
def upload(plan: MigrationPlan, ex: Extracted) -> StagedObject:
    """Upload the RDB to ``s3://staging.bucket/PREFIX/ID/dump.rdb`` (skipped when already there).

    Raises:
        TransferError: bucket missing or in another region, access denied, upload failed.
        ExtractError: the local copy is gone or its size changed since it was checked.
        PreflightError: the snapshot cannot seed the target (nothing is visible in S3).
    """
    return upload_checked_copy(plan, ex, get_run_logger())
