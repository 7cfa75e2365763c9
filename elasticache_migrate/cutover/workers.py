"""Worker containers stopped for the window and started again after it: the engine of stop-workers and
start-workers.

The field report stops the app's batch jobs and daemons (Sidekiq, Celery, RQ workers, schedulers) before the
window. A worker holds a connection to the source and writes whenever a job runs: left running it keeps the
quiesce's drain-wait from seeing the source free, its jobs block or fail during the pause, and after the cutover
it keeps working on the old source until something restarts it. The containers named in
``quiesce.stop_containers`` are stopped (``docker stop``: SIGTERM, the worker's warm shutdown, SIGKILL after
``quiesce.stop_timeout_seconds``) before the quiesce, and started again after the cutover — a start reads the
config again (a bind-mounted file, SSM or Secrets Manager fetched at start), so they come up on the new endpoint —
or after a rollback, on the old source, which serves again.

Only containers that were running are stopped: one the user had stopped is reported by preflight and is never
started. Each name is journaled (section ``workers``) right *before* its stop, so a run that crashes in between
still knows it; a crashed run's re-run or rollback starts exactly those (starting a running container changes
nothing). The Docker engine is the app containers' (``cutover.docker_host``, else ``source.docker_host``, else
the default), as for ``cutover.restart_containers``.
"""

from __future__ import annotations

from typing import Any

from elasticache_migrate.containers import docker_client, docker_errors, engine_name
from elasticache_migrate.cutover.restart import docker_host, wait_ready
from elasticache_migrate.errors import CutoverError, MigrationError, QuiesceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import StoppedWorkers

__all__ = ["RUNNING", "is_running", "with_stopped", "without_started", "stop_workers", "start_workers"]

RUNNING = frozenset({"running", "restarting"})
"""Docker statuses of a container that works (or is about to again): these are stopped for the window."""
START_TIMEOUT_SECONDS = 180  # running (and healthy, if it has a healthcheck) after the start


def is_running(status: str) -> bool:
    """Whether a container in this Docker status is one to stop (and later start); 'exited', 'created',
    'paused' and 'dead' are the user's choice and left alone."""
    return status in RUNNING


def with_stopped(recorded: StoppedWorkers | None, name: str) -> StoppedWorkers:
    """The journal's record with ``name`` added (once, in stop order)."""
    names = recorded.names if recorded else ()
    return StoppedWorkers(names if name in names else (*names, name))


def without_started(recorded: StoppedWorkers, name: str) -> StoppedWorkers | None:
    """The journal's record once ``name`` runs again; None when nothing is left to start."""
    names = tuple(n for n in recorded.names if n != name)
    return StoppedWorkers(names) if names else None


def _client(plan: MigrationPlan, step: str, error: type[MigrationError]) -> Any:
    host = docker_host(plan)
    with docker_errors(step, error, f"Docker engine {engine_name(host)}"):
        return docker_client(host, timeout=max(60, plan.quiesce.stop_timeout_seconds + 30))


def _get(client: Any, name: str, plan: MigrationPlan, step: str, error: type[MigrationError]) -> Any:
    import docker.errors

    with docker_errors(step, error, f"worker container {name}"):
        try:
            return client.containers.get(name)
        except docker.errors.NotFound as exc:
            raise error(f"worker container {name!r} does not exist on {engine_name(docker_host(plan))}",
                        remedy="fix quiesce.stop_containers (see `docker ps -a`) or cutover.docker_host",
                        step=step, retryable=False) from exc


def stop_workers(plan: MigrationPlan, log: Log = logger) -> StoppedWorkers:
    """Stop each running container of ``quiesce.stop_containers``, journaling its name first.

    A re-run after a crash keeps the names an earlier run stopped (they are stopped now, and still to start).

    Returns:
        Every container this migration has stopped and not yet started (also in the journal).

    Raises:
        QuiesceError: a container does not exist, or the engine refused or could not be reached.
    """
    journal = Journal(plan.workdir)
    recorded = journal.read().workers
    if not plan.quiesce.stop_containers:
        return recorded or StoppedWorkers()
    client = _client(plan, "stop-workers", QuiesceError)
    try:
        for name in plan.quiesce.stop_containers:
            container = _get(client, name, plan, "stop-workers", QuiesceError)
            if not is_running(container.status):
                if recorded and name in recorded.names:
                    log.info("worker container %s is %s: stopped by an earlier run of this migration", name,
                             container.status)
                else:
                    log.warning("worker container %s is %s: left as it is, and not started after the window", name,
                                container.status)
                continue
            recorded = with_stopped(recorded, name)
            journal.update(workers=recorded)  # before the stop: a crash right after it still knows to start it
            with docker_errors("stop-workers", QuiesceError, f"stop worker container {name}"):
                container.stop(timeout=plan.quiesce.stop_timeout_seconds)
            log.info("stopped worker container %s", name)
    finally:
        client.close()
    return recorded or StoppedWorkers()


def start_workers(plan: MigrationPlan, log: Log = logger) -> tuple[str, ...]:
    """Start every container the journal says this migration stopped, and wait until each runs (and is healthy).

    Each is started even when an earlier one fails; the journal keeps only those not running yet. A no-op when
    none was stopped.

    Returns:
        The names started.

    Raises:
        CutoverError: naming each container that is missing, did not start or exited/turned unhealthy.
    """
    journal = Journal(plan.workdir)
    recorded = journal.read().workers
    if recorded is None or not recorded.names:
        return ()
    client = _client(plan, "start-workers", CutoverError)
    started: list[str] = []
    failures: list[MigrationError] = []
    try:
        for name in recorded.names:
            try:
                _start_one(client, name, plan)
            except MigrationError as exc:
                failures.append(exc)
                continue
            started.append(name)
            latest = journal.read().workers
            journal.update(workers=without_started(latest, name) if latest else None)
            log.info("started worker container %s", name)
    finally:
        client.close()
    if failures:
        raise CutoverError("; ".join(exc.message for exc in failures),
                           remedy="; ".join(dict.fromkeys(exc.remedy for exc in failures)) +
                           " — then run the migration again with the same id, or start them by hand (docker start)",
                           step="start-workers")
    return tuple(started)


def _start_one(client: Any, name: str, plan: MigrationPlan) -> None:
    container = _get(client, name, plan, "start-workers", CutoverError)
    if is_running(container.status):
        return  # already running: a crashed run stopped nothing more, or someone started it by hand
    before = container.attrs["State"].get("StartedAt")
    with docker_errors("start-workers", CutoverError, f"start worker container {name}"):
        container.start()
    wait_ready(container, name, before, what="worker container", step="start-workers", event="start",
               timeout=START_TIMEOUT_SECONDS, accepts="the worker may not accept the config")
