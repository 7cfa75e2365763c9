"""The engines of the extract card step: the RDB the source wrote, out of its container (or this host) into the
sink, either to the local copy only (``staged``: the upload follows separately) or to the local copy and S3 in one
pass (``stream``)."""

from __future__ import annotations

import shutil

from elasticache_migrate.errors import ExtractError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.staging.check import checksum_word
from elasticache_migrate.staging.chunks import rdb_path_on_server, rdb_source_for
from elasticache_migrate.staging.parts import MiB, part_plan
from elasticache_migrate.staging.sink import stage, stream_upload
from elasticache_migrate.staging.verdict import verdict_for
from elasticache_migrate.state import Extracted, StagedObject

__all__ = ["COPY_NAME", "extract_copy", "extract_and_upload"]

COPY_NAME = "dump.rdb"  # the local copy, in the migration's workdir


def _room_for(plan: MigrationPlan, expected: int | None) -> None:
    """Refuse to start a copy the workdir's disk cannot hold.

    Raises:
        ExtractError: not enough free space for ``expected`` bytes (and 5 %).
    """
    workdir = plan.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if expected:
        free = shutil.disk_usage(workdir).free
        if free < expected * 1.05:
            raise ExtractError(f"{workdir} has {free >> 20} MiB free; the RDB is {expected >> 20} MiB",
                               remedy="free disk space or point staging.workdir at a bigger disk", step="extract")


def extract_copy(plan: MigrationPlan, log: Log = logger) -> Extracted:
    """Copy the source's RDB (from its container or this host) to the migration's workdir, checked; journaled.

    Raises:
        ExtractError: container or file missing, not an RDB, not enough disk, checksum mismatch.
        SourceError: the source cannot say where its RDB is.
    """
    src = rdb_source_for(plan)
    path = rdb_path_on_server(plan)
    origin = src.describe(path)
    expected, chunks = src.open(path)
    _room_for(plan, expected)
    log.info("extracting %s (%s bytes)", origin, expected if expected is not None else "?")
    result, _staged, _stats = stage(chunks, origin, plan.workdir / COPY_NAME)
    log.info("extracted %s: %s bytes, %s version %s, sha256 %s, CRC-64 %s", origin, result.size, result.magic,
             result.rdb_version, result.sha256[:16], checksum_word(result.checksum_ok))
    Journal(plan.workdir).update(extracted=result)
    return result


def extract_and_upload(plan: MigrationPlan, log: Log = logger) -> tuple[Extracted, StagedObject]:
    """Stream the RDB from its container (or host) to a local copy and to S3 in one pass; journaled at the end.

    Returns:
        The local copy (as extract's) and the staged object (as upload's).

    Raises:
        ExtractError: container/file missing, not an RDB, CRC-64 mismatch (nothing is visible in S3).
        PreflightError: the snapshot cannot seed the target (nothing is visible in S3).
        TransferError: S3 refused the upload.
    """
    step = "extract-upload"
    src = rdb_source_for(plan)
    path = rdb_path_on_server(plan)
    origin = src.describe(path)
    expected, chunks = src.open(path)
    _room_for(plan, expected)
    part, flight = part_plan(expected)
    log.info("streaming %s (%s bytes) to a local copy and s3://%s/%s (%d MiB parts, %d in flight)", origin,
             expected if expected is not None else "?", plan.staging.bucket, plan.object_key, part // MiB, flight)
    ex, staged, stats = stream_upload(plan, chunks, expected, plan.workdir / COPY_NAME, origin, log, step=step,
                                      verdict=verdict_for(plan, log, step=step))
    log.info("streamed %s bytes in %.2fs (%.0f MB/s, %d parts): %s v%s, sha256 %s, CRC-64 %s", stats.bytes,
             stats.seconds, stats.mb_per_s, stats.parts, ex.magic, ex.rdb_version, ex.sha256[:16],
             checksum_word(ex.checksum_ok))
    Journal(plan.workdir).update(extracted=ex, staged=staged)
    return ex, staged
