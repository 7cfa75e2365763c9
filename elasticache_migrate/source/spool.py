"""The replication command stream on disk, as received: raw RESP bytes in segment files named by offset.

On disk: a directory of files ``<start>.resp``, ``<start>`` the master replication offset *before* the file's
first byte, as 20 zero-padded digits (so names sort by offset); each file holds the stream's bytes from byte
``start + 1`` on, verbatim (RESP as the master sent it: commands, SELECTs, PINGs, ``REPLCONF GETACK``), and the
next file starts where the previous ends (``start + size``). A file is rotated once it reaches ``segment_bytes``;
segments may end mid-command (a reader concatenates). Nothing else is stored: the replid lives in the journal
(:class:`~elasticache_migrate.source.replica_protocol.ReplicaPosition`). Opening an existing directory carries
on after its last byte.

Memory: :meth:`Spool.append` writes straight to the file (no buffer of its own), so memory is the caller's
read buffer, whatever the spool's size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = ["SEGMENT_BYTES", "Fsync", "Spool", "segment_name", "segment_start"]

SEGMENT_BYTES = 64 << 20
_SUFFIX = ".resp"
Fsync = Literal["always", "interval", "never"]


def segment_name(start: int) -> str:
    """The file name of the segment whose first byte follows offset ``start``."""
    return f"{start:020d}{_SUFFIX}"


def segment_start(name: str) -> int | None:
    """The offset a segment's name stands for, None for a file that is not a segment."""
    stem = name[:-len(_SUFFIX)] if name.endswith(_SUFFIX) else ""
    return int(stem) if len(stem) == 20 and stem.isdigit() else None


class Spool:
    """The stream after ``start_offset``, appended in order; readable from any offset up to
    :attr:`committed_offset` while appends go on.

    ``fsync``: ``always`` (every append), ``interval`` (at most every ``fsync_interval`` seconds, and on
    :meth:`sync` / :meth:`close`), ``never`` (the OS decides). :attr:`durable_offset` is the offset fsynced.
    """

    def __init__(self, directory: Path, start_offset: int, *, segment_bytes: int = SEGMENT_BYTES,
                 fsync: Fsync = "interval", fsync_interval: float = 1.0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes, self.fsync, self.fsync_interval = segment_bytes, fsync, fsync_interval
        segments = self.segments()
        if segments:
            last = segments[-1]
            end = last + (self.directory / segment_name(last)).stat().st_size
            if not segments[0] <= start_offset <= end:
                raise ValueError(f"{self.directory} holds offsets {segments[0]}..{end}, not {start_offset}")
            start_offset, self._seg_start = end, last
        else:
            self._seg_start = start_offset
        self.first_offset = segments[0] if segments else start_offset
        self.committed_offset = start_offset
        self.durable_offset = start_offset
        self._file: BinaryIO = open(self.directory / segment_name(self._seg_start), "ab", buffering=0)
        self._last_sync = time.monotonic()

    def segments(self) -> list[int]:
        """The start offsets of the segment files, in order."""
        return sorted(s for p in self.directory.iterdir() if (s := segment_start(p.name)) is not None)

    def append(self, data: bytes | memoryview) -> int:
        """Write the stream's next bytes; returns the new :attr:`committed_offset`."""
        mv = memoryview(data)
        while len(mv):
            room = self.segment_bytes - (self.committed_offset - self._seg_start)
            if room <= 0:
                self._rotate()
                continue
            part = mv[:room]
            self._file.write(part)
            self.committed_offset += len(part)
            mv = mv[len(part):]
        if self.fsync == "always" or (self.fsync == "interval"
                                      and time.monotonic() - self._last_sync >= self.fsync_interval):
            self.sync()
        return self.committed_offset

    def _rotate(self) -> None:
        self.sync()
        self._file.close()
        self._seg_start = self.committed_offset
        self._file = open(self.directory / segment_name(self._seg_start), "ab", buffering=0)

    def sync(self) -> None:
        """fsync what was appended (the directory too, for new segment files)."""
        if self.durable_offset == self.committed_offset:
            return
        os.fsync(self._file.fileno())
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.durable_offset = self.committed_offset
        self._last_sync = time.monotonic()

    def read(self, from_offset: int, *, chunk: int = 1 << 20, until: int | None = None) -> Iterator[bytes]:
        """The stream's bytes after ``from_offset`` up to ``until`` (default: :attr:`committed_offset` when called),
        in pieces of at most ``chunk`` bytes.

        Raises:
            ValueError: ``from_offset`` is outside what the spool holds.
        """
        end = self.committed_offset if until is None else until
        if not self.first_offset <= from_offset <= end <= self.committed_offset:
            raise ValueError(f"the spool holds offsets {self.first_offset}..{self.committed_offset}, "
                             f"not {from_offset}..{end}")
        starts = self.segments()
        pos = from_offset
        for i, s in enumerate(starts):
            seg_end = starts[i + 1] if i + 1 < len(starts) else end
            if seg_end <= pos or s >= end:
                continue
            with open(self.directory / segment_name(s), "rb") as f:
                f.seek(pos - s)
                while pos < min(seg_end, end):
                    data = f.read(min(chunk, min(seg_end, end) - pos))
                    if not data:
                        raise ValueError(f"segment {segment_name(s)} ends before offset {min(seg_end, end)}")
                    pos += len(data)
                    yield data

    def close(self) -> None:
        """fsync (unless ``never``) and close the current segment."""
        if self.fsync != "never":
            self.sync()
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
