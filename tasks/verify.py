"""verify: every key of the (still paused) source equals the target's; verify-cutover: after the switch, the
app's config reads back and the new endpoint still serves the verified data.

The engine is :mod:`elasticache_migrate.verify`; these tasks publish its report as artifacts and fail the run
when it finds a difference.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from elasticache_migrate.cutover.switch import mark_verified
from elasticache_migrate.errors import VerificationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.sentinel_set import check_master
from elasticache_migrate.state import Endpoint, Snapshot
from elasticache_migrate.verify.cutover import check_cutover
from elasticache_migrate.verify.report import VerifyReport, count_rows, first_mismatches, report_markdown
from elasticache_migrate.verify.run import verify_endpoints
from tasks.retry import IO_RETRIES

__all__ = ["verify", "verify_cutover"]


@task(name="verify", **IO_RETRIES)
def verify(plan: MigrationPlan, endpoint: Endpoint, snapshot: Snapshot | None = None) -> VerifyReport:
    """Compare every key of the source with the target; publish a table artifact.

    Raises:
        VerificationError: counts or any key differ, a probe fails, or the source changed after the snapshot
            (the first mismatches are named).
        MasterChanged: a Sentinel set's master is no longer the node quiesce paused (checked after the compare,
            which also waits until its Sentinels report the hold, so none can fail it over during the approval).
    """
    log = get_run_logger()
    report = verify_endpoints(plan, endpoint, snapshot)
    create_table_artifact(key=f"verify-{plan.migration_id}", table=count_rows(report),
                          description=f"Key counts, source vs target ({endpoint.url()})")
    create_markdown_artifact(key=f"verify-report-{plan.migration_id}", markdown=report_markdown(report),
                             description="Verify result")
    log.info("verify: %s keys compared in %ss (%.0f keys/s), %s mismatches; %s", report.keys_checked,
             report.seconds, report.keys_per_second, report.mismatch_count, report.confidence)
    if report.source_state:
        log.info("source since the snapshot: %s", report.source_state)
    if not report.ok:
        raise VerificationError(f"{report.mismatch_count} difference(s) between source and target: "
                                f"{first_mismatches(report)}", step="verify")
    check_master(plan, "verify", log, confirm=True)
    return report


@task(name="verify-cutover", retries=0)
def verify_cutover(plan: MigrationPlan, endpoint: Endpoint, expected: VerifyReport) -> str:
    """After the switch: the app's config holds the new endpoint, and that endpoint serves the verified data
    (see :mod:`elasticache_migrate.verify.cutover`).

    Raises:
        VerificationError: the config does not read back, or the endpoint is not a loaded master with the
            verified databases.
        MasterChanged: a Sentinel set's master changed since quiesce (the old set may have taken writes).
    """
    log = get_run_logger()
    check_master(plan, "verify-cutover", log, strict=False)
    checked = check_cutover(plan, endpoint, expected, log)
    mark_verified(plan)  # journaled: from here no rollback (nor the crash backstop) moves the app back
    return checked
