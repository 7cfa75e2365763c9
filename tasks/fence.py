"""fence-source: right before switch-config, the old source refuses every write (on every version, without
expiry), is re-checked for writes since the snapshot, its application connections are closed and the pause is
lifted so held writes fail instead of landing. The engine is :mod:`elasticache_migrate.source.fence`.

Not retried: a re-check that found writes must roll back, not try again.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.fence import Fenced, fence
from elasticache_migrate.state import QuiesceState, Snapshot

__all__ = ["fence_source"]


@task(name="fence-source", retries=0)
def fence_source(plan: MigrationPlan, snapshot: Snapshot, state: QuiesceState) -> Fenced:
    """Fence the source before the switch: refuse writes, re-check, close app connections, unpause.

    Args:
        plan: the migration plan.
        snapshot: the snapshot the target was seeded from (the re-check compares the source with it).
        state: what quiesce changed (the journal's newer copy wins).

    Returns:
        The fenced state (journaled), the source's counters, how many connections were closed.

    Raises:
        SourceMoved: the source took writes after the snapshot; nothing is switched, the flow rolls back.
        QuiesceError: the source's CONFIG is renamed, disabled or not granted.
    """
    return fence(plan, snapshot, state, log=get_run_logger())
