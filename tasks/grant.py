"""grant: let ElastiCache read the staged object (object ACL, or a bucket-policy statement in opt-in regions),
keeping every grant that was already there. The engine is :mod:`elasticache_migrate.staging.grant`."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.grant import grant_read
from elasticache_migrate.state import StagedObject
from tasks.retry import IO_RETRIES

__all__ = ["grant"]


@task(name="grant", **IO_RETRIES)
def grant(plan: MigrationPlan, obj: StagedObject) -> str:
    """Make the staged object readable by ElastiCache, keeping existing grants. Idempotent.

    Returns:
        A one-line description of the grant in force.

    Raises:
        GrantError: the bucket has ACLs disabled, or the grant did not stick.
    """
    return grant_read(plan, obj, get_run_logger())
