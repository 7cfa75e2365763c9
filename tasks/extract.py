"""extract: the RDB out of the source into the staging pipeline (:mod:`elasticache_migrate.staging`).

- ``reuse-snapshot``: after a crash, what an earlier run left that is still valid (nothing is extracted again);
- ``extract``: from the container (Docker API) or host file to the checked local copy (staged path; upload
  follows);
- ``extract-upload``: the same into the local copy and S3 in one pass (stream path);
- ``sync-upload``: the snapshot itself read over the replication protocol into the local copy and S3 (sync path).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging import extract as engine
from elasticache_migrate.staging import resume, sync
from elasticache_migrate.staging.resume import Reuse
from elasticache_migrate.state import Extracted, Snapshot, StagedObject
from tasks.retry import IO_RETRIES

__all__ = ["reusable_snapshot", "extract", "extract_and_upload", "sync_and_upload"]


@task(name="reuse-snapshot", **IO_RETRIES)
def reusable_snapshot(plan: MigrationPlan) -> Reuse | None:
    """The earlier run's snapshot, if the source has not changed since and its copy or object is still at hand."""
    return resume.reusable_snapshot(plan, get_run_logger())


@task(name="extract", **IO_RETRIES)
def extract(plan: MigrationPlan) -> Extracted:
    """Copy the source's RDB (from its container or this host) to the migration's workdir, checked.

    Raises:
        ExtractError: container or file missing, not an RDB, not enough disk, checksum mismatch.
    """
    return engine.extract_copy(plan, get_run_logger())


@task(name="extract-upload", **IO_RETRIES)
def extract_and_upload(plan: MigrationPlan) -> tuple[Extracted, StagedObject]:
    """Stream the RDB from its container (or host) to a local copy and to S3 in one pass.

    Raises:
        ExtractError: container/file missing, not an RDB, CRC-64 mismatch (nothing is visible in S3).
        PreflightError: the snapshot cannot seed the target (nothing is visible in S3).
        TransferError: S3 refused the upload.
    """
    return engine.extract_and_upload(plan, get_run_logger())


@task(name="sync-upload", **IO_RETRIES)
def sync_and_upload(plan: MigrationPlan) -> tuple[Snapshot, Extracted, StagedObject]:
    """Snapshot the (quiesced) source through SYNC and stream the RDB to S3 and a local copy as it is written.

    Raises:
        SyncUnavailable: the source cannot or may not serve SYNC (never retried; under ``auto`` the flow takes the
            staged path).
        SourceError, SnapshotError: the link was cut or a save ran meanwhile (retried).
        ExtractError, PreflightError, TransferError: see :func:`elasticache_migrate.staging.sync.sync_and_upload`.
    """
    return sync.sync_and_upload(plan, get_run_logger())
