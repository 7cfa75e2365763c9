"""The verdict on a snapshot's checked local copy: its whole structure walked, its modules, databases and engine
compatibility (the preflight's RDB findings), before the object it becomes may be completed in S3.
"""

from __future__ import annotations

from elasticache_migrate.errors import PreflightError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.findings import Finding, blocking
from elasticache_migrate.preflight.rdb_checks import inspect_file
from elasticache_migrate.staging.sink import Verdict
from elasticache_migrate.state import Extracted

__all__ = ["NOTHING_IN_S3", "snapshot_verdict", "verdict_for"]

NOTHING_IN_S3 = "nothing is visible in S3 (the multipart upload is aborted)"


def snapshot_verdict(plan: MigrationPlan, ex: Extracted, log: Log = logger, *, step: str,
                     in_s3: str = NOTHING_IN_S3) -> list[Finding]:
    """Walk the local copy ``ex`` and judge it against the plan's target; the findings (all logged).

    ``in_s3`` says truthfully what S3 holds if the verdict refuses the snapshot.

    Raises:
        PreflightError: the snapshot could not seed the target.
    """
    findings, _summary = inspect_file(ex.path, plan, f"snapshot {ex.origin}")
    for f in findings:
        (log.warning if f.severity != "info" else log.info)("inspect %s %s: %s%s", f.severity, f.check, f.seen,
                                                             f" → {f.todo}" if f.todo else "")
    blocks = blocking(findings)
    if blocks:
        text = "\n".join(f"  - {f.check}: {f.seen} → {f.todo}" for f in blocks)
        raise PreflightError(f"the snapshot cannot seed the target; {in_s3}:\n{text}",
                             remedy="fix each problem listed, then run again", step=step)
    return findings


def verdict_for(plan: MigrationPlan, log: Log = logger, *, step: str) -> Verdict:
    """:func:`snapshot_verdict` as the sink calls it, before it completes the upload."""
    def verdict(ex: Extracted) -> list[Finding]:
        return snapshot_verdict(plan, ex, log, step=step)

    return verdict
