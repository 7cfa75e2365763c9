"""The preflight checks in the order they run, and :func:`run_checks`, which runs them all.

Checks, in order: the source (reachable, version, role, persistence, clients), its Sentinels (the master they
name, versions, reachability, agreement) and replicas, whether it can serve the sync transfer (version, the user's
SYNC permission, diskless settings), where the RDB file is on a Sentinel source, the container, the source's
current RDB (CRC-64, structure, modules, databases), the engine verdict (the stricter of that dump's header and the
RDB version the running server writes), cluster-mode hazards (over the whole keyspace), sizing, the bucket, the
grant route, the target (a rehearsal binary is checked like an engine; the security groups must admit the app hosts
and the worker), the app's config (and its Sentinel-style settings), the worker containers to stop for the window.
Each hands what it learned to the later ones through :class:`~elasticache_migrate.preflight.facts.PreflightFacts`.
"""

from __future__ import annotations

from collections.abc import Callable

import docker.errors
import requests.exceptions

from elasticache_migrate.containers import docker_client, engine_name
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.app_config import app_config_findings
from elasticache_migrate.preflight.aws_checks import bucket_findings, cutover_findings, grant_findings, target_findings
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.rdb_checks import existing_rdb_findings
from elasticache_migrate.preflight.sentinel_checks import rdb_host_findings, replica_findings, sentinel_findings
from elasticache_migrate.preflight.source_checks import (
    cluster_findings,
    sizing_findings,
    source_findings,
    sync_findings,
    version_engine_findings,
)
from elasticache_migrate.preflight.workers import worker_findings

__all__ = ["Check", "CHECKS", "run_checks", "container_findings"]

Check = Callable[[MigrationPlan, PreflightFacts], list[Finding]]
"""One read-only check: the plan and what the checks before it learned → its findings."""


def container_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The container holding the RDB exists (kind=docker)."""
    if plan.source.kind != "docker":
        return []
    host = plan.source.docker_host
    try:
        client = docker_client(host)
        try:
            c = client.containers.get(plan.source.container)
        finally:
            client.close()
    except docker.errors.NotFound:
        return [Finding("container", "block", f"no container named {plan.source.container!r} on "
                        f"{engine_name(host)}", "fix source.container (see `docker ps -a`) or source.docker_host")]
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        return [Finding("container", "block", f"cannot reach the Docker engine {host or '(default)'}: "
                        f"{type(exc).__name__}: {exc}",
                        "start the engine or fix source.docker_host; the worker needs access to its socket")]
    facts.container_ok = True
    return [Finding("container", "info", f"container {c.name} is {c.status}")]


def _existing_rdb(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The source's current dump, when it can be reached: its container exists, and the source answered or the plan
    names the file. (Its name, "existing_rdb", is what a crash of this check is reported as.)"""
    if plan.source.kind == "docker" and not facts.container_ok:
        return []
    if facts.server is None and not plan.source.rdb_path:
        return []
    return existing_rdb_findings(plan, facts)


CHECKS: list[Check] = [
    source_findings, sentinel_findings, replica_findings, sync_findings, rdb_host_findings, container_findings,
    _existing_rdb, version_engine_findings,
    cluster_findings, sizing_findings, bucket_findings, grant_findings, target_findings, cutover_findings,
    app_config_findings, worker_findings,
]


def _check_name(check: Check) -> str:
    return getattr(check, "__name__", type(check).__name__).strip("_")


def run_checks(plan: MigrationPlan, checks: list[Check] | None = None) -> list[Finding]:
    """Run every read-only check; a check that crashes becomes a 'block' finding naming it."""
    facts = PreflightFacts()
    out: list[Finding] = []
    for check in CHECKS if checks is None else checks:
        try:
            out.extend(check(plan, facts))
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others: it becomes a finding
            out.append(Finding(_check_name(check), "block", f"check failed: {type(exc).__name__}: {exc}",
                               "fix the cause named, then re-run"))
    return out
