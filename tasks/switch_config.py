"""switch-config: point the application at the new endpoint; restore-config: put the old value back.

The engine is :mod:`elasticache_migrate.cutover.switch` (backends: :mod:`elasticache_migrate.cutover`).
Neither task is retried: each changes what clients see. restore-config is the one rollback path of the
config: the flow runs it on every failure after quiesce (a no-op unless a switch is journalled).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.cutover.switch import Switched, restore, switch
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint

__all__ = ["switch_config", "restore_config"]


@task(name="switch-config", retries=0)
def switch_config(plan: MigrationPlan, endpoint: Endpoint) -> Switched:
    """Write the new endpoint where the app reads its Redis address; remember the old value; restart the app.

    Raises:
        CutoverError: the value could not be read or written, or an app container is missing or did not
            come back after its restart.
    """
    return switch(plan, endpoint, get_run_logger())


@task(name="restore-config", retries=0)
def restore_config(plan: MigrationPlan) -> bool:
    """Put back the value switch-config replaced (from the journal), restart the app; True if restored.

    Raises:
        CutoverError: the value could not be read or written, or an app container did not come back.
    """
    return restore(plan, get_run_logger())
