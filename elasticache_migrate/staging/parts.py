"""The one part-size calculator for every multipart upload, and the part bodies: windows of the local copy.

Like s3transfer's: start from a preferred part size and double it until the object fits in the planned number
of parts (fewer than S3's 10,000: the size may be an estimate, e.g. the source's used_memory for a diskless
SYNC), within S3's 5 MiB .. 5 GiB per part. The parts in flight follow from a budget of bytes in flight.

A part's body is never a buffer: it is a :class:`FileWindow` on the local copy (being written, or complete),
read by botocore in small blocks when it sends it. Memory therefore does not grow with the part size, the parts
in flight, or the RDB: only the page cache holds the bytes.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["MiB", "MIN_PART", "MAX_PART", "MAX_PARTS", "PLANNED_PARTS", "PartPolicy", "STREAMING", "FROM_FILE",
           "PartPlan", "part_plan", "FileWindow"]

MiB = 1 << 20
MIN_PART = 5 * MiB           # S3: every part but the last
MAX_PART = 5 * 1024 * MiB    # S3
MAX_PARTS = 10_000           # S3
PLANNED_PARTS = 9_000        # head room for a size that was only an estimate


@dataclass(frozen=True)
class PartPolicy:
    """What a path prefers: its part size, and how many bytes it sends at once."""

    preferred: int
    in_flight_bytes: int


STREAMING = PartPolicy(preferred=8 * MiB, in_flight_bytes=48 * MiB)
"""Parts cut from an RDB still arriving (stream, sync): small, so the upload follows the stream closely and the
tail after its last byte is at most one part."""

FROM_FILE = PartPolicy(preferred=64 * MiB, in_flight_bytes=5 * 64 * MiB)
"""Parts of the complete, checked local copy (staged, resume): fewer and bigger requests, 4 in flight."""


class PartPlan(NamedTuple):
    """Part size (the last part may be smaller) and parts in flight."""

    size: int
    in_flight: int

    def count(self, total: int) -> int:
        """How many parts ``total`` bytes make (at least one: an upload has a part)."""
        return max(1, -(-total // self.size))


def part_plan(size: int | None, policy: PartPolicy = STREAMING) -> PartPlan:
    """The plan for an object of ``size`` bytes (None: unknown, the preferred size is kept).

    >>> part_plan(100 * MiB)
    PartPlan(size=8388608, in_flight=5)
    """
    part = max(MIN_PART, policy.preferred)
    if size:
        while -(-size // part) > PLANNED_PARTS and part < MAX_PART:
            part *= 2
    part = min(part, MAX_PART)
    return PartPlan(part, max(1, policy.in_flight_bytes // part - 1))


class FileWindow(io.RawIOBase):
    """``length`` bytes of an open file from ``start``, as a read-only, seekable file of its own (positions are
    relative to ``start``): botocore reads it for the part's SHA-256, rewinds it, and sends it (again on a retry).

    Reads are positional (``os.pread``), so windows on one descriptor can be read from many threads at once.
    """

    def __init__(self, fd: int, start: int, length: int) -> None:
        super().__init__()
        self.fd, self.start, self.length = fd, start, length
        self._pos = 0

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = min(max(0, base + offset), self.length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self._pos
        n = left if size is None or size < 0 else min(size, left)
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.start + self._pos)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
