"""The engine of the sync path: the snapshot read over the replication protocol (``SYNC``) into the one sink —
local copy and S3 multipart upload while the source is still writing it.

The protocol, the CONFIG tuning and the snapshot record are :mod:`elasticache_migrate.source.replication`'s; this
module decides whether this source can serve the path at all (:class:`~elasticache_migrate.errors.SyncUnavailable`
when it cannot: the caller may take the staged path instead), and runs the transfer.
"""

from __future__ import annotations

import time

import redis

from elasticache_migrate.errors import QuiesceError, SnapshotError, SourceError, SyncUnavailable
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, server_info, source_client
from elasticache_migrate.source.replication import stream_for
from elasticache_migrate.source.snapshot import bgsave, wait_until_done
from elasticache_migrate.source.sync_protocol import SYNC_MIN_VERSION
from elasticache_migrate.source.sync_strategy import (
    read_sync_config,
    restarted_since_pause,
    restore_sync_config,
    sync_permission,
    sync_strategy,
    synced_snapshot,
    tune_config,
)
from elasticache_migrate.staging.check import checksum_word
from elasticache_migrate.staging.extract import COPY_NAME
from elasticache_migrate.staging.sink import stream_upload
from elasticache_migrate.staging.verdict import verdict_for
from elasticache_migrate.state import Extracted, ServerInfo, Snapshot, StagedObject, SyncSource

__all__ = ["STEP", "sync_and_upload", "still_paused", "unavailable"]

STEP = "sync-upload"


def unavailable(plan: MigrationPlan, server: ServerInfo, why: str) -> SyncUnavailable:
    """The error for a source that cannot or may not serve SYNC, with what to do under ``staging.transfer: sync``
    (under ``auto`` the flow takes the staged path instead)."""
    user = plan.source.redis.username or "default"
    remedy = (f"ACL SETUSER {user} +replconf +sync on the source, or set staging.transfer: staged"
              if server.version >= SYNC_MIN_VERSION else "set staging.transfer: staged (or auto)")
    return SyncUnavailable(f"transfer sync: {why}", remedy=remedy, step=STEP)


def still_paused(plan: MigrationPlan, journal: Journal, r: redis.Redis) -> None:
    """Refuse to snapshot a source that restarted since quiesce (a retry after a cut link could otherwise take a
    snapshot of a source whose writes are no longer paused).

    Raises:
        QuiesceError: the source restarted; the run must quiesce again.
    """
    j, info = journal.read(), r.info("server")
    quiesced = j.quiesce
    why = restarted_since_pause(quiesced, info, j.sync_source, time.time())
    if why:
        raise QuiesceError(f"the source restarted after its writes were paused: {why}",
                           remedy="its pause ended with the process; run the migration again (same id): it pauses "
                           "writes again and snapshots after that", step=STEP)
    if quiesced:
        journal.update(sync_source=SyncSource(paused_at=quiesced.paused_at, run_id=info.get("run_id")))


def sync_and_upload(plan: MigrationPlan, log: Log = logger) -> tuple[Snapshot, Extracted, StagedObject]:
    """Snapshot the (quiesced) source through SYNC and stream the RDB to S3 and a local copy as it is written.

    The source must be >= 7.0 (``REPLCONF rdb-only``) and the plan's user allowed REPLCONF and SYNC. See
    :mod:`elasticache_migrate.source.replication` for when a BGSAVE runs first and what config is changed (and put
    back) meanwhile. The snapshot record, the local copy and the object are journaled together, at the end.

    Returns:
        The snapshot record (as bgsave-wait's), the local copy (as extract's) and the staged object (as upload's).

    Raises:
        SyncUnavailable: the source cannot or may not serve SYNC; nothing was uploaded nor left changed (if SYNC's
            own answer said so, a BGSAVE may have run). Not retried.
        SourceError: the link was cut (retried; the upload is aborted).
        SnapshotError: a save ran during the transfer (retried), or BGSAVE failed.
        ExtractError: the payload is not a valid RDB (nothing is visible in S3).
        PreflightError: the snapshot cannot seed the target (nothing is visible in S3).
        TransferError: S3 refused the upload.
    """
    journal = Journal(plan.workdir)
    journal.update(extracted=None, staged=None)  # an earlier run's copy and object are not this snapshot's
    r = source_client(plan)
    with redis_errors(STEP, SourceError, "source"):
        server = server_info(r)
        still_paused(plan, journal, r)
        allowed, why = sync_permission(r, plan.source.redis.username)
        if server.version < SYNC_MIN_VERSION:
            raise unavailable(plan, server, f"{server} has no REPLCONF rdb-only (7.0+)")
        if allowed is False:
            raise unavailable(plan, server, why)
        t0 = time.monotonic()
        wait_until_done(r, "rdb_bgsave_in_progress", t0 + 3600, "a background save")  # may predate the pause
        before = r.info("persistence")
        strategy = sync_strategy(int(before.get("rdb_changes_since_last_save", 0)), read_sync_config(r))
        if strategy.why:
            log.info("%s", strategy.why)
        tuned = tune_config(plan, r, strategy.tune, log)
        presave = strategy.presave or (strategy.at_risk and "repl-diskless-sync" not in tuned)
        if presave:
            log.info("a BGSAVE runs first: no automatic save can follow the snapshot then")
            base = bgsave(r, 3600, log)
            journal.update(snapshot=base)
        else:
            base = Snapshot.from_info(before, 0.0)
        size_hint = int(r.info("memory").get("used_memory", 0)) or None  # sizes the parts; the RDB is smaller
    try:
        stream = stream_for(plan, r, on_start=lambda _reply: restore_sync_config(plan, r, log))
        try:
            stream.open()
        except SyncUnavailable:
            raise
        except SourceError as exc:
            if not exc.retryable:  # refused: NOPERM, no rdb-only, SYNC renamed, authentication
                raise SyncUnavailable(exc.message, remedy=exc.remedy, step=exc.step or STEP) from exc
            raise
    finally:
        with redis_errors(STEP, SourceError, "source"):
            restore_sync_config(plan, r, log)  # already done when the master forked; this covers failures
    reply = stream.reply
    if strategy.at_risk and not presave and reply.framing != "disk":  # someone set repl-diskless-sync back meanwhile
        stream.close()
        raise SnapshotError("the source streamed diskless though asked for a disk-based SYNC", step=STEP,
                            remedy="the task takes the snapshot again; keep repl-diskless-sync unchanged meanwhile",
                            retryable=True)
    origin = f"{stream.describe()} ({server}, {reply.framing})"
    log.info("%s: the master sent its %s header after %.2fs%s; streaming to a local copy and s3://%s/%s", origin,
             reply.framing, stream.first_byte_s or 0.0, f" and {reply.keepalives} keepalives" if reply.keepalives
             else "", plan.staging.bucket, plan.object_key)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    ex, staged, stats = stream_upload(plan, stream, reply.size or size_hint, plan.workdir / COPY_NAME, origin, log,
                                      step=STEP, verdict=verdict_for(plan, log, step=STEP))
    with redis_errors(STEP, SourceError, "source"):
        after = r.info("persistence")
    snapshot = synced_snapshot(str(reply.framing), base, after, time.monotonic() - t0)
    log.info("synced %s bytes in %.2fs (%.0f MB/s, %d parts; the master's part %.2fs): %s v%s, sha256 %s, CRC-64 %s",
             stats.bytes, stats.seconds, stats.mb_per_s, stats.parts, stream.seconds, ex.magic, ex.rdb_version,
             ex.sha256[:16], checksum_word(ex.checksum_ok))
    journal.update(extracted=ex, staged=staged, snapshot=snapshot)  # together: resume needs all three
    return snapshot, ex, staged
