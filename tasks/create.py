"""Where the data goes: the create and wait-available steps, over two targets (the seam).

``elasticache`` creates a replication group through boto3; ``rehearsal`` starts a real local server of
the same engine seeded from the same S3 object. Both hand back an :class:`Endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from prefect import task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import Endpoint
from tasks.log import run_logger
from tasks.retry import IO_RETRIES
from elasticache_migrate.state import StagedObject

__all__ = ["TargetHandle", "TargetBackend", "backend_for", "create", "wait_available", "delete_target"]


@dataclass(frozen=True)
class TargetHandle:
    """What create made (or adopted)."""

    kind: str
    id: str
    adopted: bool
    detail: dict[str, Any] = field(default_factory=dict)


class TargetBackend(Protocol):
    """A place the data can go."""

    kind: str

    def create(self, plan: MigrationPlan, obj: StagedObject, log: Any) -> TargetHandle:
        """Start creating the target seeded from ``obj`` (or adopt the one an earlier run made)."""
        ...

    def wait_available(self, plan: MigrationPlan, handle: TargetHandle, log: Any) -> Endpoint:
        """Block until the target serves the seeded data; return its endpoint."""
        ...

    def delete(self, plan: MigrationPlan, handle: TargetHandle, log: Any) -> None:
        """Remove a target this run created (rollback with target.delete_on_rollback)."""
        ...


def backend_for(plan: MigrationPlan) -> TargetBackend:
    """The target backend the plan names."""
    if plan.target.kind == "rehearsal":
        from elasticache_migrate.targets.rehearsal import RehearsalTarget

        return RehearsalTarget()
    from elasticache_migrate.targets.elasticache import ElastiCacheTarget

    return ElastiCacheTarget()


@task(name="create", **IO_RETRIES)
def create(plan: MigrationPlan, obj: StagedObject) -> TargetHandle:
    """Create the target seeded from the staged RDB; adopt one this migration made before.

    Raises:
        ProvisioningError: a group with that id exists and is not ours, or creation was refused.
    """
    return backend_for(plan).create(plan, obj, run_logger())


@task(name="wait-available", **IO_RETRIES)
def wait_available(plan: MigrationPlan, handle: TargetHandle) -> Endpoint:
    """Wait until the target is available and has loaded the data; return its endpoint.

    Raises:
        ProvisioningError: the target failed (e.g. ``restore-failed``) or did not come up in time.
    """
    return backend_for(plan).wait_available(plan, handle, run_logger())


@task(name="delete-target", **IO_RETRIES)
def delete_target(plan: MigrationPlan, handle: TargetHandle) -> None:
    """Delete the target this run created (only on rollback, and only when the plan asks for it)."""
    backend_for(plan).delete(plan, handle, run_logger())
