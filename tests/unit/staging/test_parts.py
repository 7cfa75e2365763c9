"""The one part-size calculator, and part bodies as windows of the local copy."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from elasticache_migrate.staging.parts import FROM_FILE, STREAMING, FileWindow, MiB, part_plan


def test_part_plan_bounds_memory_whatever_the_size() -> None:
    for size in (1, 100 * MiB, 10 * 1024 * MiB, 2 * 1024 * 1024 * MiB):
        part, flight = part_plan(size)
        assert -(-size // part) <= 9000 and 5 * MiB <= part
        assert part * (flight + 1) <= max(48 * MiB, 2 * part)


@pytest.mark.parametrize("size", [1, 64 << 20, 10 << 30, 2 * (1 << 40), 5 * (1 << 40)])
def test_the_local_copy_upload_stays_within_s3_part_limits(size: int) -> None:
    cfg = part_plan(size, FROM_FILE)  # was the staged upload's boto3 TransferConfig (upload_file)
    parts = -(-size // cfg.size)
    assert parts <= 10_000
    assert 5 << 20 <= cfg.size <= 5 << 30  # S3: 5 MiB .. 5 GiB per part
    assert cfg.size >= 64 << 20


def test_part_plan_prefers_small_parts_for_streams_and_doubles_like_s3transfer() -> None:
    assert part_plan(None) == (8 * MiB, 5)               # size unknown: the preferred part
    assert part_plan(40 * MiB) == (8 * MiB, 5)
    assert part_plan(40 * MiB, FROM_FILE) == (64 * MiB, 4)
    assert part_plan(100 * 1024 * MiB).size == 16 * MiB  # 12,800 parts of 8 MiB would be too many
    assert part_plan(1 << 60).size == 5 * 1024 * MiB     # never past S3's largest part
    assert STREAMING.preferred < FROM_FILE.preferred
    assert part_plan(100 * MiB).count(100 * MiB) == 13 and part_plan(1).count(0) == 1


def test_a_file_window_reads_seeks_and_rewinds_within_its_range(tmp_path: Path) -> None:
    f = tmp_path / "copy"
    f.write_bytes(bytes(range(256)) * 40)
    fd = os.open(f, os.O_RDONLY)
    try:
        w = FileWindow(fd, 1000, 300)
        assert len(w) == 300 and w.readable() and w.seekable()
        first = w.read(100)
        assert first == (bytes(range(256)) * 40)[1000:1100] and w.tell() == 100
        assert w.read() == (bytes(range(256)) * 40)[1100:1300] and w.read(10) == b""
        assert w.seek(0) == 0 and w.read(100) == first  # botocore rewinds after hashing, and to retry
        assert w.seek(-50, io.SEEK_END) == 250 and len(w.read()) == 50
        assert w.seek(0, io.SEEK_END) == 300 and w.seek(10, io.SEEK_CUR) == 300  # never past its end
        buf = bytearray(20)
        w.seek(0)
        assert w.readinto(buf) == 20 and bytes(buf) == first[:20]
    finally:
        os.close(fd)
