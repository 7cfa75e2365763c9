"""The runbook's data path, as one call: the snapshot from the quiesced source to S3, by the path this run takes.

Plain Python called by the flow (not a task): it calls the step tasks, so each still shows in the run as its own
task run. The decision is :func:`elasticache_migrate.staging.paths.choose_path`; every path writes through the one
sink (:mod:`elasticache_migrate.staging.sink`), which completes the object in S3 only after the RDB's structure
walk and engine verdict passed.
"""

from __future__ import annotations

from elasticache_migrate.errors import SyncUnavailable
from elasticache_migrate.log import Log
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.paths import choose_path, fallback_path
from elasticache_migrate.state import QuiesceState, StagedSnapshot
from tasks.bgsave_wait import bgsave_wait
from tasks.extract import extract, extract_and_upload, reusable_snapshot, sync_and_upload
from tasks.upload import upload

__all__ = ["stage_snapshot"]


def stage_snapshot(plan: MigrationPlan, quiesced: QuiesceState, log: Log) -> StagedSnapshot:
    """Take (or, after a crash, reuse) the snapshot of the quiesced source and stage it in S3.

    - reused: an earlier run's object still holds the unchanged snapshot;
    - reuploaded: only its checked local copy is left: upload it;
    - sync: SYNC straight into the local copy and S3 (``auto`` on a source >= 7.0); a source that refuses SYNC
      under ``auto`` takes the staged path instead;
    - stream: bgsave-wait, then the local copy and S3 in one pass;
    - staged: bgsave-wait, extract to the checked local copy, upload it (a failed upload resumes from the copy).

    Raises:
        MigrationError: whatever the step that failed raised (``SyncUnavailable`` only under ``sync``).
    """
    earlier = reusable_snapshot(plan)  # after a crash: the earlier snapshot, if the source is unchanged
    path = choose_path(plan.staging.transfer, quiesced.server, earlier)
    if path == "reused":                # ... and its object in S3 is intact
        assert earlier is not None and earlier.staged is not None
        return StagedSnapshot(earlier.snapshot, earlier.extracted, earlier.staged, path)
    if path == "reuploaded":            # ... uploaded again from the local copy
        assert earlier is not None
        return StagedSnapshot(earlier.snapshot, earlier.extracted, upload(plan, earlier.extracted), path)
    if path == "sync":
        try:
            snapshot, rdb, staged = sync_and_upload(plan)
            return StagedSnapshot(snapshot, rdb, staged, "sync")
        except SyncUnavailable as exc:
            fallback = fallback_path(plan.staging.transfer)
            if fallback is None:
                raise
            log.warning("staging.transfer auto: %s; taking the snapshot with BGSAVE (%s) instead",
                                     exc.message, fallback)
            path = fallback
    snapshot = bgsave_wait(plan)
    if path == "stream":
        rdb, staged = extract_and_upload(plan)  # one pass: local copy + CRC-64 + S3 multipart, parts in parallel
        return StagedSnapshot(snapshot, rdb, staged, "stream")
    rdb = extract(plan)
    return StagedSnapshot(snapshot, rdb, upload(plan, rdb), "staged")
