"""The one sink every path writes through: chunks → RDB stream check → local copy → S3 multipart upload.

::

    chunks (replication stream | container archive | host file)
      → RdbStreamCheck: header after the first bytes, SHA-256, CRC-64 (refused: nothing kept, upload aborted)
      → the local copy, written atomically (``dump.rdb.part``, fsynced, renamed), flushed in the background
      → S3 parts: windows of the local copy, sent in parallel as soon as their bytes are on disk
      → the verdict on the complete copy (structure walk, engine) while the last parts are in flight
      → CompleteMultipartUpload: only now does the object exist in S3

A copy that is already complete and checked (the staged path, a resumed run) enters at the parts: its verdict
first, then its windows (:func:`upload_copy`). Nothing is visible in S3 before the stream checked out and the
verdict passed: any failure aborts the multipart upload. The stream is never held back by the upload (its parts
are read back from the page cache), and memory does not depend on the RDB's size or the part size (see
:mod:`elasticache_migrate.staging.parts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import ExtractError, MigrationError, TransferError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.rdb import RdbHeader
from elasticache_migrate.staging.check import Chunk, RdbStreamCheck
from elasticache_migrate.staging.parts import FROM_FILE, STREAMING, FileWindow, MiB, PartPlan, PartPolicy, part_plan
from elasticache_migrate.staging.s3 import (
    already_uploaded,
    head,
    sha_tags,
    staged_object,
    stream_extra_args,
    upload_extra_args,
)
from elasticache_migrate.state import Extracted, StagedObject

__all__ = ["Verdict", "TransferStats", "MultipartUpload", "stage", "write_checked", "stream_upload", "upload_copy"]

Verdict = Callable[[Extracted], object]
"""Called on the complete, checked local copy before the object is completed in S3; raises to refuse it."""

_FLUSH_EVERY = 64 * MiB    # the local copy is flushed to disk in the background every this many bytes


@dataclass(frozen=True)
class TransferStats:
    """How a pass through the sink went."""

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


class MultipartUpload:
    """The plan's object as one multipart upload: created with the first part, parts sent in parallel, completed
    only when :meth:`complete` is called, aborted by :meth:`abort`.

    ``known``: the checked local copy being uploaded (its SHA-256 goes into the metadata); None when the SHA-256
    is learned on the way (the object is tagged with it once complete).
    """

    def __init__(self, plan: MigrationPlan, s3: Any, parts: PartPlan, *, log: Log = logger,
                 known: Extracted | None = None) -> None:
        self.plan, self.s3, self.parts, self.log, self.known = plan, s3, parts, log, known
        self.bucket, self.key = plan.staging.bucket, plan.object_key
        self.upload_id: str | None = None
        self.failed: BaseException | None = None
        self._futures: list[Future[dict[str, Any]]] = []
        self._pool = ThreadPoolExecutor(parts.in_flight, thread_name_prefix="part")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def sent(self) -> int:
        """Parts handed to the upload so far."""
        return len(self._futures)

    def send(self, body: FileWindow, header: RdbHeader | None = None) -> None:
        """Upload ``body`` as the next part (in the background); the first part creates the upload (``header``: the
        RDB's, read by the check, when the copy is not ``known``).

        Raises:
            BaseException: a part that failed earlier (the caller's ``aws_errors`` maps it).
        """
        self.raise_failure()
        if self.upload_id is None:
            if self.known is not None:
                args = upload_extra_args(self.plan, self.known)
            else:
                assert header is not None, "a streamed upload starts once the check has read the RDB's header"
                args = stream_extra_args(self.plan, header.magic, header.version)
            self.upload_id = str(self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **args)["UploadId"])
        future = self._pool.submit(self._send, len(self._futures) + 1, body)
        future.add_done_callback(self._note)
        self._futures.append(future)

    def _send(self, number: int, body: FileWindow) -> dict[str, Any]:
        r = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                Body=body, ChecksumAlgorithm="SHA256")
        return {"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": r.get("ChecksumSHA256")}

    def _note(self, future: Future[dict[str, Any]]) -> None:
        if not future.cancelled() and future.exception() is not None and self.failed is None:
            self.failed = future.exception()

    def raise_failure(self) -> None:
        """Raise the first part's failure, if one failed."""
        if self.failed is not None:
            raise self.failed

    def complete(self, ex: Extracted) -> StagedObject:
        """Wait for every part, complete the upload (the object appears), tag it, and check what S3 now holds.

        Raises:
            TransferError: S3 holds something else under the key afterwards.
        """
        done = [f.result() for f in self._futures]
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                          MultipartUpload={"Parts": done})
        self.upload_id = None
        tagged = None
        if self.known is None:
            self.s3.put_object_tagging(Bucket=self.bucket, Key=self.key,
                                       Tagging={"TagSet": sha_tags(self.plan, ex.sha256)})
            tagged = ex.sha256
        found = head(self.s3, self.bucket, self.key)
        if found is None or not already_uploaded(found, ex, tagged):
            raise TransferError(f"{self.uri} does not match the local RDB after upload",
                                remedy="re-run; if it persists, check for another writer of that key",
                                retryable=True)
        return staged_object(self.bucket, self.key, found, ex, uploaded=True)

    def abort(self, cause: BaseException | None = None) -> None:
        """Stop sending parts and abort the upload (no part may land after it); S3 lifecycle rules clean up if the
        abort itself fails — then ``cause``, the failure that made us abort, says that its parts are left in S3."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is not None:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
                self.upload_id = None
            except (ClientError, BotoCoreError) as exc:  # the original error matters more
                self.log.warning("could not abort multipart upload %s of %s: %s", self.upload_id, self.uri, exc)
                if isinstance(cause, MigrationError):
                    cause.message += (f" (correction: aborting multipart upload {self.upload_id} of {self.uri} "
                                      f"failed, {type(exc).__name__}: its {self.sent} part(s) stay in S3, unseen, "
                                      "until a lifecycle rule or `aws s3api abort-multipart-upload --bucket "
                                      f"{self.bucket} --key {self.key} --upload-id {self.upload_id}` removes them)")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def stage(chunks: Iterable[Chunk], origin: str, copy: Path, *, upload: MultipartUpload | None = None,
          verdict: Verdict | None = None) -> tuple[Extracted, StagedObject | None, TransferStats]:
    """The sink: check ``chunks``, write them to ``copy`` and upload them (``upload``) as they come, then run
    ``verdict`` on the complete copy and complete the upload.

    Raises:
        ExtractError: not an RDB, or a CRC-64 mismatch.
        TransferError: S3 refused (when the caller maps botocore's errors).
        MigrationError: whatever ``chunks`` or ``verdict`` raised.
        In every case the multipart upload is aborted and the copy this call wrote is removed.
    """
    t0 = time.monotonic()
    check = RdbStreamCheck(origin)
    target = copy.with_name(copy.name + ".part")
    renamed = False
    fd = -1
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        out = open(target, "wb")  # closed below, after the flusher
        flusher = _Flusher(out.fileno())
        try:
            if upload is not None:
                fd = os.open(target, os.O_RDONLY)
            part = upload.parts.size if upload is not None else 0
            sent = 0
            for block in chunks:
                check.feed(block)  # the header first; SHA-256 and CRC-64 on every block
                out.write(block)
                flusher.wrote(check.size)
                if upload is not None and check.size - sent >= part:
                    upload.raise_failure()
                    out.flush()  # the part's bytes are in the page cache: its window can be read back
                    while check.size - sent >= part:
                        assert check.header is not None
                        upload.send(FileWindow(fd, sent, part), check.header)
                        sent += part
            ex = check.result(str(copy))  # refuses an empty stream or a CRC-64 mismatch: nothing completes in S3
            out.flush()
            if upload is not None and (check.size > sent or upload.sent == 0):
                assert check.header is not None
                upload.send(FileWindow(fd, sent, check.size - sent), check.header)
            flusher.close()
            os.fsync(out.fileno())
        finally:
            flusher.close()
            out.close()
        os.replace(target, copy)
        renamed = True
        if verdict is not None:
            verdict(ex)  # the structure walk on the complete copy, while the last parts are in flight
        staged = upload.complete(ex) if upload is not None else None
    except BaseException as exc:
        if upload is not None:
            upload.abort(exc)
        target.unlink(missing_ok=True)
        if renamed:
            copy.unlink(missing_ok=True)
        raise
    finally:
        if upload is not None:
            upload.close()
        if fd >= 0:
            os.close(fd)
    secs = time.monotonic() - t0
    stats = TransferStats(round(secs, 3), ex.size, upload.sent if upload is not None else 0,
                          round(ex.size / MiB / secs, 1) if secs else 0.0)
    return ex, staged, stats


def write_checked(chunks: Iterable[Chunk], dest: Path, origin: str) -> Extracted:
    """Write ``chunks`` to ``dest`` atomically, checking the RDB header first and hashing as it goes.

    Raises:
        ExtractError: not an RDB (nothing is kept), or the copy does not match its own checksum.
    """
    return stage(chunks, origin, dest)[0]


def _multipart(plan: MigrationPlan, size: int | None, policy: PartPolicy, log: Log,
               known: Extracted | None = None) -> MultipartUpload:
    return MultipartUpload(plan, aws_client(plan, "s3"), part_plan(size, policy), log=log, known=known)


def stream_upload(plan: MigrationPlan, chunks: Iterable[Chunk], expected: int | None, dest: Path, origin: str,
                  log: Log = logger, *, step: str = "extract-upload",
                  verdict: Verdict | None = None) -> tuple[Extracted, StagedObject, TransferStats]:
    """Copy ``chunks`` to ``dest`` and to the plan's object at once (stream, sync): one pass.

    ``expected`` (the size, or an upper estimate) only sizes the parts. The object is completed only when the whole
    stream checked out and ``verdict`` passed; anything else aborts the upload.

    Raises:
        ExtractError: not an RDB, or the CRC-64 does not match (the multipart upload is aborted).
        TransferError: S3 refused the upload.
        MigrationError: whatever ``chunks`` or ``verdict`` raised (the multipart upload is aborted).
    """
    upload = _multipart(plan, expected, STREAMING, log)
    with aws_errors(step, TransferError, upload.uri):
        ex, staged, stats = stage(chunks, origin, dest, upload=upload, verdict=verdict)
    assert staged is not None
    return ex, staged, stats


def upload_copy(plan: MigrationPlan, ex: Extracted, log: Log = logger, *, step: str = "upload",
                verdict: Verdict | None = None) -> tuple[StagedObject, TransferStats]:
    """Upload the checked local copy ``ex`` (staged, resume): ``verdict`` first (the copy is complete: nothing is sent
    for a snapshot that cannot seed the target), then its parts, windows of the copy, in parallel; the object is
    completed once they are all in.

    Raises:
        ExtractError: the copy is gone, or its size is no longer the checked one.
        TransferError: S3 refused the upload.
        MigrationError: whatever ``verdict`` raised (nothing was sent).
    """
    path = Path(ex.path)
    t0 = time.monotonic()
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ExtractError(f"the checked local copy {path} is gone", step=step,
                           remedy="run the migration again (same id): it takes a new snapshot") from exc
    try:
        size = os.fstat(fd).st_size
        if size != ex.size:
            raise ExtractError(f"{path} changed since it was checked ({size} bytes, it was {ex.size})", step=step,
                               remedy="run the migration again (same id): it takes a new snapshot")
        if verdict is not None:
            verdict(ex)
        upload = _multipart(plan, ex.size, FROM_FILE, log, known=ex)
        with aws_errors(step, TransferError, upload.uri):
            try:
                for start in range(0, ex.size, upload.parts.size):
                    upload.send(FileWindow(fd, start, min(upload.parts.size, ex.size - start)))
                staged = upload.complete(ex)
            except BaseException as exc:
                upload.abort(exc)
                raise
            finally:
                upload.close()
    finally:
        os.close(fd)
    secs = time.monotonic() - t0
    return staged, TransferStats(round(secs, 3), ex.size, upload.sent, round(ex.size / MiB / secs, 1) if secs else 0.0)
