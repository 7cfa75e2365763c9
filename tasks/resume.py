"""Resume after a crash: reuse the earlier run's snapshot when it still is the source's data.

A run killed after bgsave-wait left a journal (``<workdir>/<id>/journal.json``) with the snapshot's
LASTSAVE / rdb_saves and, later, the extracted file's SHA-256 and the staged object. A re-run with the same
migration id takes a new snapshot only if the source changed since (``rdb_changes_since_last_save`` or a
newer save); otherwise it goes on from the staged object, or from the extracted file if the upload had
not finished. The sync transfer journals all three at its end: a run killed mid-transfer leaves nothing to
reuse and the re-run snapshots again, as after the stream transfer. Creating the target adopts the earlier
one (tagged with the id) and switch-config does not write a value that is already there: nothing is done
twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task

from elasticache_migrate.aws import aws_client
from elasticache_migrate.errors import SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, source_client
from elasticache_migrate.source.replication import restore_sync_config
from elasticache_migrate.state import Extracted, Snapshot, StagedObject
from tasks.log import run_logger
from tasks.retry import IO_RETRIES
from tasks.upload import already_uploaded, sha_tag

__all__ = ["Reuse", "snapshot_still_current", "reusable_snapshot"]


@dataclass(frozen=True)
class Reuse:
    """What an earlier run of this migration left that is still valid."""

    snapshot: Snapshot
    extracted: Extracted
    staged: StagedObject | None     # None: the upload must be (re)done from ``extracted.path``


def snapshot_still_current(snap: Snapshot, info: dict[str, Any]) -> bool:
    """Whether the source (INFO persistence now) is unchanged since the journal's snapshot."""
    if int(info.get("rdb_bgsave_in_progress", 0)):
        return False
    if int(info.get("rdb_changes_since_last_save", 1)) != snap.changes_since_save:
        return False
    if int(info.get("rdb_last_save_time", -1)) != snap.last_save_time:
        return False
    saves, then = info.get("rdb_saves"), snap.rdb_saves
    return saves is None or then is None or int(saves) == int(then)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@task(name="reuse-snapshot", **IO_RETRIES)
def reusable_snapshot(plan: MigrationPlan) -> Reuse | None:
    """The earlier run's snapshot, if the source has not changed since and its copy is still at hand."""
    log = run_logger()
    with redis_errors("reuse-snapshot", SourceError, "source"):
        restore_sync_config(plan, log=log)  # a run killed during SYNC's set-up may have left config changed
    j = Journal(plan.workdir).read()
    snap, extracted = j.snapshot, j.extracted
    if not snap or not extracted:
        return None
    with redis_errors("reuse-snapshot", SourceError, "source"):
        info = source_client(plan).info("persistence")
    if not snapshot_still_current(snap, info):
        log.info("the source changed since the earlier run's snapshot: taking a new one")
        return None
    staged = None
    if j.staged:
        s3 = aws_client(plan, "s3")
        try:
            head = s3.head_object(Bucket=plan.staging.bucket, Key=plan.object_key)
        except Exception:  # noqa: BLE001 - gone or unreadable: upload again
            head = None
        if already_uploaded(head, extracted, sha_tag(s3, plan.staging.bucket, plan.object_key) if head else None):
            staged = dataclasses.replace(j.staged, uploaded=False)
    if staged is None:
        p = Path(extracted.path)
        if not (p.is_file() and p.stat().st_size == extracted.size and _file_sha256(p) == extracted.sha256):
            log.info("the earlier snapshot's copy is gone and it was not uploaded: taking a new snapshot")
            return None
    log.info("resuming: the source is unchanged since the earlier snapshot (LASTSAVE %s); %s", snap.last_save_time,
             f"reusing {staged.uri}" if staged else f"uploading {extracted.path} again")
    return Reuse(snap, extracted, staged)
