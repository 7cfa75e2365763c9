"""quiesce / unquiesce / finish-source: the source's writes blocked or refused for the window, given back by a
rollback, or kept refused (fenced) after a verified cutover. The engine is
:mod:`elasticache_migrate.source.quiesce`; the pause's renewal
(:class:`~elasticache_migrate.source.quiesce.PauseRenewal`) runs in the flow's process."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.quiesce import finish, pause, unpause
from elasticache_migrate.state import QuiesceState
from tasks.retry import IO_RETRIES

__all__ = ["quiesce", "unquiesce", "finish_source"]


@task(name="quiesce", **IO_RETRIES)
def quiesce(plan: MigrationPlan) -> QuiesceState:
    """Stop writes to the source: maintenance hook on, wait for app clients to leave, block or refuse writes.

    Args:
        plan: the migration plan.

    Returns:
        What was changed, for :func:`unquiesce` (also journaled).

    Raises:
        QuiesceError: clients did not leave in time (named), or writes could not be paused.
    """
    return pause(plan, log=get_run_logger())


@task(name="unquiesce", **IO_RETRIES)
def unquiesce(plan: MigrationPlan, state: QuiesceState | None = None) -> None:
    """Give the source back to the application: config values back, writes unpaused, maintenance hook off.

    Safe to call more than once, and after a crash (the state is read from the journal).
    """
    unpause(plan, state, log=get_run_logger())


@task(name="finish-source", **IO_RETRIES)
def finish_source(plan: MigrationPlan, state: QuiesceState) -> str:
    """After a verified cutover: maintenance hook off; the old source stays fenced (refuses every write).

    Returns:
        What was done, with the commands that would lift the fence.
    """
    return finish(plan, state, log=get_run_logger())
