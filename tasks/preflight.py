"""preflight: read-only checks that refuse a migration that would fail, before anything is changed.

Each check returns findings (block / warn / info: what was seen, what to do); the checks themselves are in
:mod:`elasticache_migrate.preflight.checks`. The flow runs them first and stops on any ``block`` with every
finding listed, before quiesce touches the source. In plan-only mode (``migrate_redis(plan, plan_only=True)``)
nothing else runs: the report is the result. The same RDB checks judge the fresh snapshot inside the staging
pipeline, before its object in S3 is completed (:mod:`elasticache_migrate.staging.verdict`).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from elasticache_migrate.errors import PreflightError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.checks import run_checks
from elasticache_migrate.preflight.findings import Finding, blocking, report_markdown, report_text

__all__ = ["preflight"]


def _listed(blocks: list[Finding]) -> str:
    return "\n".join(f"  - {f.check}: {f.seen} → {f.todo}" for f in blocks)


@task(name="preflight")
def preflight(plan: MigrationPlan) -> list[Finding]:
    """Run the read-only checks, publish the report, stop the run (nothing changed) if any finding blocks.

    Raises:
        PreflightError: listing every blocking finding with what to do.
    """
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
        raise PreflightError(f"{len(blocks)} blocking problem(s), nothing was changed:\n{_listed(blocks)}",
                             remedy="fix each problem listed, then run again", step="preflight")
    log.info("preflight: %d findings, none blocking", len(findings))
    return findings
