"""One streaming pass into S3: a stream of the RDB feeds, at the same time, a local copy (for resume and the
structure check), SHA-256 and CRC-64, and an S3 multipart upload with parts in flight in parallel.

Two streams feed it: the container's archive stream after BGSAVE (``stream``: :func:`extract_and_upload`),
and the master's own replication stream, read while the source writes it (``sync``: :func:`sync_and_upload`,
protocol in :mod:`elasticache_migrate.source.replication`).

Nothing becomes visible in S3 before the stream is validated: the multipart upload is completed only when
the header was an RDB's and the trailing CRC-64 matches; otherwise it is aborted. Memory is bounded by
``part size x (parts in flight + 1)`` whatever the RDB's size (parts grow only past 72 GiB, and then fewer
are kept in flight): part buffers are reused, each byte is copied once into its part and handed to botocore
as is. The local copy is flushed to disk in the background as it grows, so the final fsync is short.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import QuiesceError, SnapshotError, SourceError, TransferError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, server_info, source_client
from elasticache_migrate.source.replication import (
    SYNC_MIN_VERSION,
    read_sync_config,
    restarted_since_pause,
    restore_sync_config,
    stream_for,
    sync_permission,
    sync_strategy,
    synced_snapshot,
    tune_config,
)
from elasticache_migrate.state import Extracted, Snapshot, StagedObject, SyncSource
from tasks.bgsave_wait import bgsave_wait, wait_until_done
from tasks.extract import RdbStreamCheck, rdb_path_on_server, rdb_source_for
from tasks.log import run_logger
from tasks.retry import IO_RETRIES
from tasks.upload import stream_extra_args

__all__ = ["MiB", "part_plan", "TransferStats", "stream_upload", "extract_and_upload", "sync_and_upload"]

MiB = 1 << 20
_MEMORY_BUDGET = 48 * MiB  # bytes of parts held at once (in flight + the one filling)
_FLUSH_EVERY = 64 * MiB    # the local copy is flushed to disk in the background every this many bytes


def part_plan(size: int | None) -> tuple[int, int]:
    """(part size, parts in flight): 8 MiB parts, 5 in flight; bigger parts past 9,000 parts, fewer in flight."""
    part = 8 * MiB
    if size:
        part = max(part, -(-size // 9000))
    in_flight = max(1, _MEMORY_BUDGET // part - 1)
    return part, in_flight


@dataclass(frozen=True)
class TransferStats:
    """How the streaming pass went."""

    seconds: float
    bytes: int
    parts: int
    mb_per_s: float


class _Flusher:
    """fdatasync the file being written every ``every`` bytes, in a background thread (one flush at a time),
    so the closing fsync has little left to write."""

    def __init__(self, fd: int, every: int = _FLUSH_EVERY) -> None:
        self.fd, self.every, self._next = fd, every, every
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="flush")
        self._running: Future[None] | None = None

    def wrote(self, total: int) -> None:
        if total >= self._next and (self._running is None or self._running.done()):
            self._running = self._pool.submit(os.fdatasync, self.fd)
            self._next = total + self.every

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> _Flusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # before the file is closed: no flush may run on a closed (or reused) descriptor


class _Parts:
    """Part buffers, allocated on demand and reused once their upload is done: at most ``in flight + 1`` of them
    exist (the ones being uploaded and the one filling), whatever the RDB's size. Each byte is copied once, from
    the stream into its part; the part goes to botocore as it is (a bytearray is sent without a copy)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            return self._free.pop() if self._free else bytearray(self.size)

    def give_back(self, buf: bytearray) -> None:
        if len(buf) == self.size:
            with self._lock:
                self._free.append(buf)


def stream_upload(plan: MigrationPlan, chunks: Iterable[Any], expected: int | None, dest: Path, origin: str,
                  log: Any, *, step: str = "extract-upload") -> tuple[Extracted, StagedObject, TransferStats]:
    """Copy ``chunks`` (bytes-like) to ``dest`` and to S3 at once, checking header, SHA-256 and CRC-64 on the way.

    ``expected`` (the size, or an upper estimate) only sizes the parts. The multipart upload is created once the
    header is read and completed only when the whole stream checked out; anything else aborts it.

    Raises:
        ExtractError: not an RDB, or the CRC-64 does not match (the multipart upload is aborted).
        TransferError: S3 refused the upload.
        MigrationError: whatever ``chunks`` raised (the multipart upload is aborted).
    """
    s3 = aws_client(plan, "s3")
    bucket, key = plan.staging.bucket, plan.object_key
    part_size, in_flight = part_plan(expected)
    slots = threading.Semaphore(in_flight)
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="part")
    futures: list[Future[dict[str, Any]]] = []
    failed: list[BaseException] = []
    upload_id: str | None = None
    check = RdbStreamCheck(origin)
    parts = _Parts(part_size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part_path = dest.with_name(dest.name + ".part")
    t0 = time.monotonic()

    def send(number: int, body: bytearray) -> dict[str, Any]:
        try:
            r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                               ChecksumAlgorithm="SHA256")
            return {"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": r.get("ChecksumSHA256")}
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            parts.give_back(body)
            slots.release()

    def submit(body: bytearray) -> None:
        nonlocal upload_id
        if upload_id is None:
            extra = stream_extra_args(plan, check.header.magic, check.header.version)
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        slots.acquire()  # back-pressure: at most ``in_flight`` parts in memory besides the one filling
        if failed:
            slots.release()
            raise failed[0]
        futures.append(pool.submit(send, len(futures) + 1, body))

    try:
        with (aws_errors(step, TransferError, f"s3://{bucket}/{key}"), open(part_path, "wb") as out,
              _Flusher(out.fileno()) as flusher):
            buf, filled = parts.take(), 0
            view = memoryview(buf)
            for block in chunks:
                check.feed(block)  # the header first; SHA-256 and CRC-64 on every block
                out.write(block)
                flusher.wrote(check.size)
                data = memoryview(block)
                while len(data):
                    n = min(len(data), part_size - filled)
                    view[filled:filled + n] = data[:n]
                    filled += n
                    data = data[n:]
                    if filled == part_size:
                        view.release()
                        submit(buf)
                        buf, filled = parts.take(), 0
                        view = memoryview(buf)
                if failed:
                    raise failed[0]
            ex = check.result(str(dest))  # refuses an empty stream or a CRC-64 mismatch: nothing completes in S3
            view.release()
            if filled or not futures:
                del buf[filled:]  # the last part: its own length, no copy
                submit(buf)
            done = [f.result() for f in futures]
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
            upload_id = None
            s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [
                {"Key": "sha256", "Value": ex.sha256}, {"Key": "migration-id", "Value": plan.migration_id}]})
            out.flush()
            flusher.close()
            os.fsync(out.fileno())
        os.replace(part_path, dest)
    except BaseException:
        part_path.unlink(missing_ok=True)
        pool.shutdown(wait=True, cancel_futures=True)  # no part may land after the abort
        if upload_id is not None:
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the original error matters; S3 lifecycle cleans leftovers
                log.warning("could not abort multipart upload %s", upload_id)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    secs = time.monotonic() - t0
    head = s3.head_object(Bucket=bucket, Key=key)
    staged = StagedObject(bucket, key, ex.size, ex.sha256, str(head.get("ETag", "")).strip('"'), ex.rdb_version,
                          ex.magic, uploaded=True)
    stats = TransferStats(round(secs, 3), ex.size, len(futures), round(ex.size / MiB / secs, 1) if secs else 0.0)
    return ex, staged, stats


@task(name="extract-upload", **IO_RETRIES)
def extract_and_upload(plan: MigrationPlan) -> tuple[Extracted, StagedObject]:
    """Stream the RDB from its container (or host) to a local copy and to S3 in one pass.

    Returns:
        The local copy (as extract would) and the staged object (as upload would).

    Raises:
        ExtractError: container/file missing, not an RDB, CRC-64 mismatch (nothing is left in S3).
        TransferError: S3 refused the upload.
    """
    log = run_logger()
    src = rdb_source_for(plan)
    path = rdb_path_on_server(plan)
    origin = src.describe(path)
    expected, chunks = src.open(path)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    part, flight = part_plan(expected)
    log.info("streaming %s (%s bytes) to a local copy and s3://%s/%s (%d MiB parts, %d in flight)", origin,
             expected if expected is not None else "?", plan.staging.bucket, plan.object_key, part // MiB, flight)
    ex, staged, stats = stream_upload(plan, chunks, expected, plan.workdir / "dump.rdb", origin, log)
    log.info("streamed %s bytes in %.2fs (%.0f MB/s, %d parts): %s v%s, sha256 %s, CRC-64 %s", stats.bytes,
             stats.seconds, stats.mb_per_s, stats.parts, ex.magic, ex.rdb_version, ex.sha256[:16],
             {True: "ok", None: "absent", False: "BAD"}[ex.checksum_ok])
    Journal(plan.workdir).update(extracted=ex, staged=staged)
    return ex, staged


def _still_paused(plan: MigrationPlan, journal: Journal, r: Any) -> None:
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
                           "writes again and snapshots after that", step="sync-upload")
    if quiesced:
        journal.update(sync_source=SyncSource(paused_at=quiesced.paused_at, run_id=info.get("run_id")))


@task(name="sync-upload", **IO_RETRIES)
def sync_and_upload(plan: MigrationPlan) -> tuple[Snapshot, Extracted, StagedObject] | None:
    """Snapshot the (quiesced) source through SYNC and stream the RDB to S3 and a local copy as it is written.

    The source must be >= 7.0 (``REPLCONF rdb-only``) and the plan's user allowed REPLCONF and SYNC. See
    :mod:`elasticache_migrate.source.replication` for when a BGSAVE runs first and what config is changed (and put
    back) meanwhile.

    Returns:
        The snapshot record (as bgsave-wait's), the local copy (as extract's) and the staged object (as
        upload's). None, under ``staging.transfer: auto`` only, when the source cannot or may not serve SYNC:
        nothing was uploaded nor left changed (if SYNC's own answer said so, a BGSAVE may have run), and the flow
        takes the staged path instead.

    Raises:
        SourceError: SYNC refused (``transfer: sync``), or the link was cut (retried; the upload is aborted).
        SnapshotError: a save ran during the transfer (retried), or BGSAVE failed.
        ExtractError: the payload is not a valid RDB (nothing is left in S3).
        TransferError: S3 refused the upload.
    """
    log = run_logger()
    auto = plan.staging.transfer == "auto"
    journal = Journal(plan.workdir)
    journal.update(extracted=None, staged=None)  # an earlier run's copy and object are not this snapshot's
    r = source_client(plan)
    with redis_errors("sync-upload", SourceError, "source"):
        server = server_info(r)
        version = server.version
        _still_paused(plan, journal, r)
        allowed, why = sync_permission(r, plan.source.redis.username)
        refused = (f"{server} has no REPLCONF rdb-only (7.0+)" if version < SYNC_MIN_VERSION
                   else why if allowed is False else None)
        if refused:
            if auto:
                log.warning("staging.transfer auto: %s; taking the snapshot with BGSAVE (staged) instead", refused)
                return None
            raise SourceError(f"transfer sync: {refused}", step="sync-upload", retryable=False,
                              remedy=f"ACL SETUSER {plan.source.redis.username or 'default'} +replconf +sync on the "
                              "source, or set staging.transfer: staged" if version >= SYNC_MIN_VERSION
                              else "set staging.transfer: staged (or auto)")
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
            base = bgsave_wait.fn(plan)
        else:
            base = Snapshot.from_info(before, 0.0)
        size_hint = int(r.info("memory").get("used_memory", 0)) or None  # sizes the parts; the RDB is smaller
    try:
        stream = stream_for(plan, r, on_start=lambda _reply: restore_sync_config(plan, r, log))
        try:
            stream.open()
        except SourceError as exc:
            if auto and not exc.retryable:
                log.warning("staging.transfer auto: %s; taking the snapshot with BGSAVE (staged) instead", exc)
                return None
            raise
    finally:
        with redis_errors("sync-upload", SourceError, "source"):
            restore_sync_config(plan, r, log)  # already done when the master forked; this covers failures
    reply = stream.reply
    if strategy.at_risk and not presave and reply.framing != "disk":  # someone set repl-diskless-sync back meanwhile
        stream.close()
        raise SnapshotError("the source streamed diskless though asked for a disk-based SYNC", step="sync-upload",
                            remedy="the task takes the snapshot again; keep repl-diskless-sync unchanged meanwhile",
                            retryable=True)
    origin = f"{stream.describe()} ({server}, {reply.framing})"
    log.info("%s: the master sent its %s header after %.2fs%s; streaming to a local copy and s3://%s/%s", origin,
             reply.framing, stream.first_byte_s or 0.0, f" and {reply.keepalives} keepalives" if reply.keepalives
             else "", plan.staging.bucket, plan.object_key)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    ex, staged, stats = stream_upload(plan, stream, reply.size or size_hint, plan.workdir / "dump.rdb", origin, log,
                                      step="sync-upload")
    with redis_errors("sync-upload", SourceError, "source"):
        after = r.info("persistence")
    snapshot = synced_snapshot(str(reply.framing), base, after, time.monotonic() - t0)
    log.info("synced %s bytes in %.2fs (%.0f MB/s, %d parts; the master's part %.2fs): %s v%s, sha256 %s, CRC-64 %s",
             stats.bytes, stats.seconds, stats.mb_per_s, stats.parts, stream.seconds, ex.magic, ex.rdb_version,
             ex.sha256[:16], {True: "ok", None: "absent", False: "BAD"}[ex.checksum_ok])
    journal.update(extracted=ex, staged=staged, snapshot=snapshot)  # together: resume needs all three
    return snapshot, ex, staged
