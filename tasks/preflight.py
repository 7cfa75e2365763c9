"""preflight: read-only checks that refuse a migration that would fail, before anything is changed.

Each check returns findings (block / warn / info: what was seen, what to do). The flow runs them first
and stops on any ``block`` with every finding listed, before quiesce touches the source. In plan-only
mode (``migrate_redis(plan, plan_only=True)``) nothing else runs: the report is the result.

Checks, in order: the source (reachable, version, role, persistence, clients), whether it can serve the
sync transfer (version, the user's SYNC permission, diskless settings), and its current RDB
(engine compatibility from the file header, CRC-64, structure, modules, databases), cluster-mode
hazards, sizing, the container, the bucket, the grant route, the target, the app's config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task

from elasticache_migrate.errors import PreflightError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.aws_checks import bucket_findings, cutover_findings, grant_findings, target_findings
from elasticache_migrate.preflight.findings import Finding, blocking, report_markdown, report_text
from elasticache_migrate.preflight.rdb_checks import existing_rdb_findings
from elasticache_migrate.preflight.source_checks import (
    cluster_findings,
    sizing_findings,
    source_findings,
    sync_findings,
    version_engine_findings,
)

__all__ = ["Finding", "CHECKS", "run_checks", "preflight", "inspect_snapshot", "container_findings"]


def container_findings(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The container holding the RDB exists (kind=docker)."""
    if plan.source.kind != "docker":
        return []
    try:
        import docker

        client = (docker.DockerClient(base_url=plan.source.docker_host) if plan.source.docker_host
                  else docker.from_env())
        c = client.containers.get(plan.source.container)
    except Exception as exc:  # noqa: BLE001
        name = type(exc).__name__
        if name == "NotFound":
            return [Finding("container", "block", f"no container named {plan.source.container!r} on "
                            f"{plan.source.docker_host or 'the default Docker engine'}",
                            "fix source.container (see `docker ps -a`) or source.docker_host")]
        return [Finding("container", "block", f"cannot reach the Docker engine "
                        f"{plan.source.docker_host or '(default)'}: {name}: {exc}",
                        "start the engine or fix source.docker_host; the worker needs access to its socket")]
    facts["container_ok"] = True
    return [Finding("container", "info", f"container {c.name} is {c.status}")]


def _existing_rdb(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    if plan.source.kind == "docker" and not facts.get("container_ok"):
        return []
    if "source_version" not in facts and not plan.source.rdb_path:
        return []
    return existing_rdb_findings(plan, facts)


CHECKS: list[Callable[[MigrationPlan, dict[str, Any]], list[Finding]]] = [
    source_findings, sync_findings, container_findings, _existing_rdb, version_engine_findings, cluster_findings,
    sizing_findings, bucket_findings, grant_findings, target_findings, cutover_findings,
]


def run_checks(plan: MigrationPlan) -> list[Finding]:
    """Run every read-only check; a check that crashes becomes a 'block' finding naming it."""
    facts: dict[str, Any] = {}
    out: list[Finding] = []
    for check in CHECKS:
        try:
            out.extend(check(plan, facts))
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            out.append(Finding(check.__name__.strip("_"), "block", f"check failed: {type(exc).__name__}: {exc}",
                               "fix the cause named, then re-run"))
    return out


@task(name="preflight")
def preflight(plan: MigrationPlan) -> list[Finding]:
    """Run the read-only checks, publish the report, stop the run (nothing changed) if any finding blocks.

    Raises:
        PreflightError: listing every blocking finding with what to do.
    """
    from prefect.artifacts import create_markdown_artifact

    log = get_run_logger()
    findings = run_checks(plan)
    title = f"Preflight for {plan.migration_id}"
    create_markdown_artifact(key=f"preflight-{plan.migration_id}", markdown=report_markdown(title, findings),
                             description="Preflight report")
    print(report_text(title, findings), flush=True)
    blocks = blocking(findings)
    for f in blocks:
        log.warning("preflight block %s: %s → %s", f.check, f.seen, f.todo)
    if blocks:
        text = "\n".join(f"  - {f.check}: {f.seen} → {f.todo}" for f in blocks)
        raise PreflightError(f"{len(blocks)} blocking problem(s), nothing was changed:\n{text}",
                             remedy="fix each problem listed, then run again", step="preflight")
    log.info("preflight: %d findings, none blocking", len(findings))
    return findings


@task(name="inspect-snapshot")
def inspect_snapshot(plan: MigrationPlan, rdb: Any) -> list[Finding]:
    """Gate between extract and upload: the fresh RDB's structure, CRC-64, modules and engine compatibility.

    Raises:
        PreflightError: the snapshot could not seed the target (nothing is uploaded).
    """
    from elasticache_migrate.preflight.rdb_checks import inspect_file

    log = get_run_logger()
    findings, summary = inspect_file(rdb.path, plan, f"snapshot {rdb.origin}")
    for f in findings:
        (log.warning if f.severity != "info" else log.info)("inspect %s %s: %s%s", f.severity, f.check, f.seen,
                                                             f" → {f.todo}" if f.todo else "")
    blocks = blocking(findings)
    if blocks:
        text = "\n".join(f"  - {f.check}: {f.seen} → {f.todo}" for f in blocks)
        raise PreflightError(f"the snapshot cannot seed the target, nothing was uploaded:\n{text}",
                             remedy="fix each problem listed, then run again", step="inspect-snapshot")
    return findings
