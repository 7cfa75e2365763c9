"""wait-available: block until the target serves the seeded data, and hand on its endpoint."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint
from elasticache_migrate.targets import TargetHandle, backend_for
from tasks.retry import IO_RETRIES

__all__ = ["wait_available"]


@task(name="wait-available", **IO_RETRIES)
def wait_available(plan: MigrationPlan, handle: TargetHandle) -> Endpoint:
    """Wait until the target is available and has loaded the data; return its endpoint.

    Raises:
        ProvisioningError: the target failed (e.g. ``restore-failed``) or did not come up in time.
    """
    return backend_for(plan).wait_available(plan, handle, get_run_logger())
