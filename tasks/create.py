"""create: make (or adopt) the target seeded from the staged RDB; delete-target: remove it on a rollback.

The backends live in :mod:`elasticache_migrate.targets` (``elasticache``: a replication group through boto3;
``rehearsal``: a real local server of the same engine seeded from the same S3 object).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import StagedObject
from elasticache_migrate.targets import TargetHandle, backend_for
from tasks.retry import IO_RETRIES

__all__ = ["create", "delete_target"]


@task(name="create", **IO_RETRIES)
def create(plan: MigrationPlan, obj: StagedObject) -> TargetHandle:
    """Create the target seeded from the staged RDB; adopt one this migration made before.

    Raises:
        ProvisioningError: a group with that id exists and is not ours, or creation was refused.
    """
    return backend_for(plan).create(plan, obj, get_run_logger())


@task(name="delete-target", **IO_RETRIES)
def delete_target(plan: MigrationPlan, handle: TargetHandle) -> None:
    """Delete the target this run created (only on rollback, and only when the plan asks for it)."""
    backend_for(plan).delete(plan, handle, get_run_logger())
