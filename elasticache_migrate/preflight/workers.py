"""Preflight of ``quiesce.stop_containers``: each worker container exists on the app containers' Docker engine,
and what the window will do with it (stop and start again if it runs, leave it alone if it does not)."""

from __future__ import annotations

import docker.errors
import requests.exceptions

from elasticache_migrate.containers import docker_client, engine_name
from elasticache_migrate.cutover.restart import docker_host
from elasticache_migrate.cutover.workers import is_running
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding

__all__ = ["worker_finding", "worker_findings"]

CHECK = "workers"


def worker_finding(name: str, status: str | None, engine: str) -> Finding:
    """The finding for one worker container in Docker ``status`` (None: no such container on ``engine``)."""
    if status is None:
        return Finding(CHECK, "block", f"no worker container named {name!r} on {engine}",
                       "fix quiesce.stop_containers (see `docker ps -a` on that engine) or cutover.docker_host")
    if is_running(status):
        return Finding(CHECK, "info", f"worker container {name} is {status}: stopped before the pause, started "
                       "again after the cutover (new config) or a rollback (old config)")
    return Finding(CHECK, "warn", f"worker container {name} is {status}: it will be left stopped (never started "
                   "by the migration)", f"start it before the window (docker start {name}) if it should run")


def worker_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """Every container of quiesce.stop_containers exists on the engine (block), with its state (info/warn)."""
    names = plan.quiesce.stop_containers
    if not names:
        return []
    host = docker_host(plan)
    found = []
    try:
        client = docker_client(host)
        try:
            for name in names:
                try:
                    status: str | None = client.containers.get(name).status
                except docker.errors.NotFound:
                    status = None
                found.append(worker_finding(name, status, engine_name(host)))
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        return [Finding(CHECK, "block", f"cannot reach the Docker engine {host or '(default)'} of the worker "
                        f"containers: {type(exc).__name__}: {exc}",
                        "start the engine or fix cutover.docker_host / source.docker_host; the worker needs its "
                        "socket")]
    return found
