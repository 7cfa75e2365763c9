"""quiesce / unquiesce / finish-source: the source's writes paused for the window, and given back (or kept
refused) after it. The engine is :mod:`elasticache_migrate.source.quiesce`."""

from __future__ import annotations

from prefect import task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.quiesce import (
    REFUSE_WRITES_REPLICAS,
    blocking_clients,
    call_maintenance_hook,
    describe_client,
    finish,
    pause,
    pause_mode,
    refuse_writes_settings,
    unpause,
)
from elasticache_migrate.state import QuiesceState
from tasks.log import run_logger
from tasks.retry import IO_RETRIES

__all__ = [
    "quiesce",
    "unquiesce",
    "finish_source",
    # the engine's names, importable from here as before
    "REFUSE_WRITES_REPLICAS",
    "QuiesceState",
    "pause_mode",
    "blocking_clients",
    "describe_client",
    "refuse_writes_settings",
    "call_maintenance_hook",
]


@task(name="quiesce", **IO_RETRIES)
def quiesce(plan: MigrationPlan) -> QuiesceState:
    """Stop writes to the source: maintenance hook on, wait for app clients to leave, pause writes.

    Args:
        plan: the migration plan.

    Returns:
        What was changed, for :func:`unquiesce` (also journaled).

    Raises:
        QuiesceError: clients did not leave in time (named), or writes could not be paused.
    """
    return pause(plan, log=run_logger())


@task(name="unquiesce", **IO_RETRIES)
def unquiesce(plan: MigrationPlan, state: QuiesceState | None = None) -> None:
    """Give the source back to the application: writes allowed again, maintenance hook off.

    Safe to call more than once, and after a crash (the state is read from the journal).
    """
    unpause(plan, state, log=run_logger())


@task(name="finish-source", **IO_RETRIES)
def finish_source(plan: MigrationPlan, state: QuiesceState) -> str:
    """After a verified cutover: maintenance hook off; the old source keeps refusing writes, or is unpaused."""
    return finish(plan, state, log=run_logger())
