"""quiesce / unquiesce / finish-source: the source's writes blocked or refused for the window, given back by a
rollback, or kept refused (fenced) after a verified cutover. The engine is
:mod:`elasticache_migrate.source.quiesce`; the pause's renewal
(:class:`~elasticache_migrate.source.quiesce.PauseRenewal`) runs in the flow's process."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.cutover.workers import start_workers as start_worker_containers
from elasticache_migrate.cutover.workers import stop_workers as stop_worker_containers
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.decommission import retire
from elasticache_migrate.source.quiesce import pause, unpause
from elasticache_migrate.source.sentinel_set import hold_set
from elasticache_migrate.state import QuiesceState, StoppedWorkers
from tasks.retry import IO_RETRIES

__all__ = ["quiesce", "unquiesce", "finish_source", "stop_workers", "start_workers"]


@task(name="quiesce", **IO_RETRIES)
def quiesce(plan: MigrationPlan) -> QuiesceState:
    """Stop writes to the source: maintenance hook on, wait for app clients to leave, block or refuse writes; a
    Sentinel set is held still (its replicas at priority 0: no failover until the cutover or the rollback).

    Args:
        plan: the migration plan.

    Returns:
        What was changed, for :func:`unquiesce` (also journaled).

    Raises:
        QuiesceError: clients did not leave in time (named), or writes could not be paused.
        MasterChanged: the Sentinels named another master as the window opened (then nothing stays changed).
    """
    log = get_run_logger()
    state = pause(plan, log=log)
    try:
        if state.node is not None:
            hold_set(plan, state.node, log)
    except BaseException:
        unpause(plan, log=log)  # the window does not open: writes and the replicas' priorities back
        raise
    return state


@task(name="unquiesce", **IO_RETRIES)
def unquiesce(plan: MigrationPlan, state: QuiesceState | None = None) -> None:
    """Give the source back to the application: config values back, writes unpaused, maintenance hook off.

    Safe to call more than once, and after a crash (the state is read from the journal).
    """
    unpause(plan, state, log=get_run_logger())


@task(name="finish-source", **IO_RETRIES)
def finish_source(plan: MigrationPlan, state: QuiesceState) -> str:
    """After a verified cutover: a Sentinel set is decommissioned (its Sentinels stop monitoring it, its replicas
    refuse writes: stopping the old master promotes nothing); maintenance hook off; the old source stays fenced.

    Returns:
        What was done, with the commands that would lift the fence (and monitor the old set again).
    """
    return retire(plan, state, log=get_run_logger())


# --- worker containers (quiesce.stop_containers): stopped before the pause, started after the window -----------

@task(name="stop-workers", **IO_RETRIES)
def stop_workers(plan: MigrationPlan) -> StoppedWorkers:
    """Stop the running worker containers of ``quiesce.stop_containers`` before the quiesce, so they leave the source.

    Each is journaled before its stop; one the user had stopped is left alone. The engine is
    :mod:`elasticache_migrate.cutover.workers`.

    Returns:
        The containers this migration stopped and has not started yet.

    Raises:
        QuiesceError: a container does not exist, or the Docker engine refused or could not be reached.
    """
    return stop_worker_containers(plan, log=get_run_logger())


@task(name="start-workers", **IO_RETRIES)
def start_workers(plan: MigrationPlan) -> tuple[str, ...]:
    """Start the worker containers this migration stopped (from the journal): after the cutover they read the new
    config, after a rollback the old one. A no-op when none was stopped; safe after a crash.

    Raises:
        CutoverError: naming each container that is missing or did not come back (the others are started).
    """
    return start_worker_containers(plan, log=get_run_logger())
