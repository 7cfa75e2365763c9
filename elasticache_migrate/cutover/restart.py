"""Restart the app's containers after its config changed (switch and restore), so they read it again.

For the setup of the first field report: the app and Redis in two containers on one host, the app reading
an env or YAML file at start. The containers named in ``cutover.restart_containers`` are restarted one at a
time through the Docker engine (a rolling restart when they are replicas), each waited for until it runs
again and, if it has a healthcheck, is healthy. This suits an app that reads a *bind-mounted* file (mount
its directory: an atomic rewrite gives the file a new inode) or fetches SSM/Secrets Manager at start.
Variables given with ``--env-file`` / compose ``env_file:`` are fixed when the container is created; a
restart does not re-read them (that needs ``docker compose up -d``, which re-creates the container).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from elasticache_migrate.containers import docker_client, docker_errors
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["check_containers", "restart_containers", "readiness", "wait_ready", "docker_host"]

STOP_TIMEOUT_SECONDS = 10  # SIGTERM, then SIGKILL after this long
READY_TIMEOUT_SECONDS = 180  # running (and healthy, if it has a healthcheck)
POLL_SECONDS = 0.5


def docker_host(plan: MigrationPlan) -> str | None:
    """The engine of the app containers: cutover.docker_host, else source.docker_host, else None (default)."""
    return plan.cutover.docker_host or plan.source.docker_host


def readiness(state: dict[str, Any], started_before: str | None) -> str:
    """'ready', 'wait' or why the container failed, from ``attrs["State"]`` after a restart."""
    if started_before is not None and state.get("StartedAt") == started_before:
        return "wait"  # not the new start yet
    status = state.get("Status")
    if status in ("exited", "dead"):
        return f"it {status} with code {state.get('ExitCode')} after the restart"
    if status != "running":
        return "wait"  # created / restarting / paused for a moment
    health = (state.get("Health") or {}).get("Status")
    if health is None or health == "healthy":
        return "ready"
    if health == "unhealthy":
        return "its healthcheck reports unhealthy"
    return "wait"  # starting


def _client(plan: MigrationPlan) -> Any:
    host = docker_host(plan)
    with docker_errors("switch-config", CutoverError, f"Docker engine {host or '(default)'}"):
        return docker_client(host, timeout=60)


def _get(client: Any, name: str, plan: MigrationPlan) -> Any:
    import docker.errors

    with docker_errors("switch-config", CutoverError, f"container {name}"):
        try:
            return client.containers.get(name)
        except docker.errors.NotFound as exc:
            raise CutoverError(f"app container {name!r} does not exist on {docker_host(plan) or 'the default engine'}",
                               remedy="fix cutover.restart_containers (docker ps -a) or cutover.docker_host",
                               step="switch-config") from exc


def check_containers(plan: MigrationPlan) -> None:
    """Every container to restart exists (checked before the config is changed).

    Raises:
        CutoverError: naming the first one that does not.
    """
    if not plan.cutover.restart_containers:
        return
    client = _client(plan)
    try:
        for name in plan.cutover.restart_containers:
            _get(client, name, plan)
    finally:
        client.close()


def restart_containers(plan: MigrationPlan, log: Callable[[str], Any] | None = None) -> list[str]:
    """Restart each of cutover.restart_containers in turn and wait until it runs (and is healthy).

    Returns:
        The names restarted.

    Raises:
        CutoverError: a container is missing, exited, unhealthy or not ready in time.
    """
    names = plan.cutover.restart_containers
    if not names:
        return []
    client = _client(plan)
    try:
        for name in names:
            container = _get(client, name, plan)
            before = container.attrs["State"].get("StartedAt")
            with docker_errors("switch-config", CutoverError, f"restart container {name}"):
                container.restart(timeout=STOP_TIMEOUT_SECONDS)
            wait_ready(container, name, before)
            if log:
                log(f"restarted container {name}")
    finally:
        client.close()
    return list(names)


def wait_ready(container: Any, name: str, started_before: str | None, *, what: str = "app container",
               step: str = "switch-config", event: str = "restart", timeout: float = READY_TIMEOUT_SECONDS,
               accepts: str = "the app may not accept the new config") -> None:
    """Wait until ``container`` runs again after its ``event`` (and is healthy, with a healthcheck).

    Raises:
        CutoverError: it exited or turned unhealthy, or is not ready within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        with docker_errors(step, CutoverError, f"{what} {name}"):
            container.reload()
        verdict = readiness(container.attrs["State"], started_before)
        if verdict == "ready":
            return
        if verdict != "wait":
            raise CutoverError(f"{what} {name}: {verdict.replace('the restart', f'its {event}')}",
                               remedy=f"read `docker logs {name}`: {accepts}", step=step)
        if time.monotonic() > deadline:
            raise CutoverError(f"{what} {name} not running and healthy {timeout:.0f} s after its {event}",
                               remedy=f"read `docker logs {name}` and `docker inspect {name}`", step=step)
        time.sleep(POLL_SECONDS)
