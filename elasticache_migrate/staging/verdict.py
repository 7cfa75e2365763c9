"""The verdict on a snapshot's checked local copy: its whole structure walked, its modules, databases and engine
compatibility (the preflight's RDB findings), before the object it becomes may be completed in S3.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from elasticache_migrate.aws import aws_client
from elasticache_migrate.errors import PreflightError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.findings import Finding, blocking
from elasticache_migrate.preflight.rdb_checks import inspect_file
from elasticache_migrate.staging.s3 import head
from elasticache_migrate.staging.sink import Verdict
from elasticache_migrate.state import Extracted

__all__ = ["NOTHING_IN_S3", "snapshot_verdict", "verdict_for", "what_s3_holds"]

NOTHING_IN_S3 = "none of this snapshot is in S3 (its multipart upload, if started, is aborted)"


def what_s3_holds(plan: MigrationPlan) -> str:
    """What S3 holds under the plan's object key now that a snapshot was refused, in words for the error.

    The refused snapshot itself never completes (its multipart upload is aborted); an object an earlier run
    completed under the same key is still there, and the message must not say "nothing" then.
    """
    uri = f"s3://{plan.staging.bucket}/{plan.object_key}"
    try:
        found = head(aws_client(plan, "s3"), plan.staging.bucket, plan.object_key)
    except (ClientError, BotoCoreError) as exc:
        return f"{NOTHING_IN_S3}; whether {uri} holds an earlier run's object is unknown ({type(exc).__name__})"
    if found is None:
        return f"{NOTHING_IN_S3}; nothing is stored under {uri}"
    when = found.get("LastModified")
    return (f"{NOTHING_IN_S3}, but {uri} holds an object of {int(found.get('ContentLength', 0)):,} bytes"
            + (f" from {when:%Y-%m-%d %H:%M} UTC" if when is not None else "")
            + " (an earlier run's upload), left in place: it is not removed — delete it (aws s3 rm "
            f"{uri}) if it is not wanted")


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
        try:
            return snapshot_verdict(plan, ex, log, step=step)
        except PreflightError as exc:  # say what S3 really holds, looked at now
            exc.message = exc.message.replace(NOTHING_IN_S3, what_s3_holds(plan), 1)
            raise

    return verdict
