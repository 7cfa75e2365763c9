"""extract + upload in one streaming pass: the container's archive stream feeds, at the same time, a local
copy (for resume and the structure check), SHA-256 and CRC-64, and an S3 multipart upload with parts in
flight in parallel.

Nothing becomes visible in S3 before the stream is validated: the multipart upload is completed only when
the header was an RDB's and the trailing CRC-64 matches; otherwise it is aborted. Memory is bounded by
``part size x (parts in flight + 1)`` whatever the RDB's size (parts grow only past 72 GiB, and then fewer
are kept in flight).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import task

from tasks.aws import aws_client
from tasks.errors import TransferError, mapped
from tasks.extract import Extracted, RdbStreamCheck, rdb_path_on_server, rdb_source_for
from tasks.journal import Journal
from tasks.log import run_logger
from tasks.plan import MigrationPlan
from tasks.retry import IO_RETRIES
from tasks.upload import StagedObject, stream_extra_args

__all__ = ["MiB", "part_plan", "TransferStats", "stream_upload", "extract_and_upload"]

MiB = 1 << 20
_MEMORY_BUDGET = 48 * MiB  # bytes of parts held at once (in flight + the one filling)


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


def stream_upload(plan: MigrationPlan, chunks: Any, expected: int | None, dest: Path, origin: str,
                  log: Any) -> tuple[Extracted, StagedObject, TransferStats]:
    """Copy ``chunks`` to ``dest`` and to S3 at once, checking header, SHA-256 and CRC-64 on the way.

    Raises:
        ExtractError: not an RDB, or the CRC-64 does not match (the multipart upload is aborted).
        TransferError: S3 refused the upload.
    """
    s3 = aws_client(plan, "s3")
    bucket, key = plan.staging.bucket, plan.object_key
    part_size, in_flight = part_plan(expected)
    slots = threading.Semaphore(in_flight)
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="part")
    futures: list[Future[dict[str, Any]]] = []
    upload_id: str | None = None
    check = RdbStreamCheck(origin)
    buf = bytearray()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part_path = dest.with_name(dest.name + ".part")
    t0 = time.monotonic()

    def send(number: int, body: bytes) -> dict[str, Any]:
        try:
            r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                               ChecksumAlgorithm="SHA256")
            return {"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": r.get("ChecksumSHA256")}
        finally:
            slots.release()

    def submit(body: bytes) -> None:
        slots.acquire()  # back-pressure: at most ``in_flight`` parts in memory besides the one filling
        futures.append(pool.submit(send, len(futures) + 1, body))

    try:
        with mapped("extract-upload", TransferError, f"s3://{bucket}/{key}"), open(part_path, "wb") as out:
            for block in chunks:
                check.feed(block)  # the header on the first block; SHA-256 and CRC-64 on every one
                if upload_id is None:
                    extra = stream_extra_args(plan, check.header.magic, check.header.version)
                    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
                out.write(block)
                buf += block
                while len(buf) >= part_size:
                    submit(bytes(buf[:part_size]))
                    del buf[:part_size]
                for f in futures:
                    if f.done() and f.exception():
                        raise f.exception()  # type: ignore[misc]
            ex = check.result(str(dest))  # refuses an empty stream or a CRC-64 mismatch: nothing completes in S3
            if buf or not futures:
                submit(bytes(buf))
            parts = [f.result() for f in futures]
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
            upload_id = None
            s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [
                {"Key": "sha256", "Value": ex.sha256}, {"Key": "migration-id", "Value": plan.migration_id}]})
            out.flush()
            os.fsync(out.fileno())
        os.replace(part_path, dest)
    except BaseException:
        part_path.unlink(missing_ok=True)
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
    journal = Journal(plan.workdir)
    journal.put("extracted", asdict(ex))
    journal.put("staged", asdict(staged))
    return ex, staged
