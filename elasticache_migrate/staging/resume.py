"""Resume after a crash: reuse the earlier run's snapshot when it still is the source's data.

A run killed after bgsave-wait left a journal (``<workdir>/<id>/journal.json``) with the snapshot's LASTSAVE /
rdb_saves and, later, the checked local copy's SHA-256 and the staged object. A re-run with the same migration id
takes a new snapshot only if the source changed since (``rdb_changes_since_last_save`` or a newer save); otherwise
it goes on from the staged object, or from the local copy if the upload had not finished (the object is completed
only at the very end of an upload, so an unfinished one left nothing visible). The sync and stream transfers
journal the copy and the object together at their end: a run killed mid-transfer leaves nothing to reuse and the
re-run snapshots again. Creating the target adopts the earlier one (tagged with the id) and switch-config does not
write a value that is already there: nothing is done twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import SourceError, TransferError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, source_client
from elasticache_migrate.source.sync_strategy import restore_sync_config
from elasticache_migrate.staging.chunks import file_chunks
from elasticache_migrate.staging.s3 import existing_object
from elasticache_migrate.staging.verdict import snapshot_verdict
from elasticache_migrate.state import Extracted, Snapshot, StagedObject

__all__ = ["STEP", "Reuse", "snapshot_still_current", "copy_intact", "reusable_snapshot"]

STEP = "reuse-snapshot"


@dataclass(frozen=True)
class Reuse:
    """What an earlier run of this migration left that is still valid."""

    snapshot: Snapshot
    extracted: Extracted
    staged: StagedObject | None     # None: the upload must be (re)done from ``extracted.path``


def snapshot_still_current(snap: Snapshot, info: Mapping[str, Any]) -> bool:
    """Whether the source (INFO persistence now) is unchanged since the journal's snapshot."""
    if int(info.get("rdb_bgsave_in_progress", 0)):
        return False
    if int(info.get("rdb_changes_since_last_save", 1)) != snap.changes_since_save:
        return False
    if int(info.get("rdb_last_save_time", -1)) != snap.last_save_time:
        return False
    saves, then = info.get("rdb_saves"), snap.rdb_saves
    return saves is None or then is None or int(saves) == int(then)


def copy_intact(ex: Extracted) -> bool:
    """Whether the checked local copy is still on disk, byte for byte (size, then SHA-256)."""
    p = Path(ex.path)
    if not (p.is_file() and p.stat().st_size == ex.size):
        return False
    h = hashlib.sha256()
    for block in file_chunks(p):
        h.update(block)
    return h.hexdigest() == ex.sha256


def reusable_snapshot(plan: MigrationPlan, log: Log = logger) -> Reuse | None:
    """The earlier run's snapshot, if the source has not changed since and its copy or object is still at hand.

    Also puts back source config a run killed during SYNC's set-up may have left changed. An object reused as it
    is gets the verdict again on its local copy (the plan's target may have changed since).

    Raises:
        PreflightError: the reused snapshot cannot seed the plan's target (the object is left in place).
        SourceError, TransferError: the source or S3 cannot be asked.
    """
    with redis_errors(STEP, SourceError, "source"):
        restore_sync_config(plan, log=log)
    j = Journal(plan.workdir).read()
    snap, extracted = j.snapshot, j.extracted
    if not snap or not extracted:
        return None
    with redis_errors(STEP, SourceError, "source"):
        info = source_client(plan).info("persistence")
    if not snapshot_still_current(snap, info):
        log.info("the source changed since the earlier run's snapshot: taking a new one")
        return None
    staged = None
    if j.staged:
        with aws_errors(STEP, TransferError, j.staged.uri):
            staged = existing_object(aws_client(plan, "s3"), plan, extracted)
    if staged is None and not copy_intact(extracted):
        log.info("the earlier snapshot's copy is gone and it was not uploaded: taking a new snapshot")
        return None
    log.info("resuming: the source is unchanged since the earlier snapshot (LASTSAVE %s); %s", snap.last_save_time,
             f"reusing {staged.uri}" if staged else f"uploading {extracted.path} again")
    if staged is not None:
        copy = Path(extracted.path)
        if copy.is_file() and copy.stat().st_size == extracted.size:  # the walk checks its CRC-64 too
            snapshot_verdict(plan, extracted, log, step=STEP,
                             in_s3=f"{staged.uri}, uploaded by an earlier run, is left in place")
        else:
            log.info("the local copy %s is gone: %s passed its verdict before it was completed", copy, staged.uri)
    return Reuse(snap, extracted, staged)
