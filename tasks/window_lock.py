"""window-lock: one migration window at a time per source, held by this run's process for the whole window.

The engine is :mod:`elasticache_migrate.source.lock`: a named connection to the source that lives as long as the
run's process, paused for approval or not (Prefect's deployment concurrency slot does not: the server releases
it when a run pauses). A second run for the same source fails here, naming the holder, having changed nothing.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.lock import WindowLock

__all__ = ["window_lock"]


@task(name="window-lock", retries=0, cache_policy=NO_CACHE, persist_result=False)
def window_lock(plan: MigrationPlan) -> WindowLock:
    """Take the source's window lock for this flow run (released by the flow when the run ends, or with the process).

    Raises:
        WindowLocked: another run holds the source's window (named, with what to do); nothing was changed.
        SourceError: the source cannot be reached, or refuses CLIENT SETNAME / CLIENT LIST.
    """
    ctx = FlowRunContext.get()
    run = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    return WindowLock(plan, run, log=get_run_logger()).acquire()
