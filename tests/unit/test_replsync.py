"""The RDB stream check the sync transfer feeds (tasks.extract.RdbStreamCheck): the header from pieces of any
size, the trailing CRC-64. No server. (The SYNC protocol's own tests are in tests/unit/source/.)"""

from __future__ import annotations

import random

import pytest

from elasticache_migrate.rdb import crc64_jones
from tasks.extract import RdbStreamCheck


def rdb_bytes(n: int = 5000, seed: int = 1) -> bytes:
    """A syntactically plausible RDB: header, random body, 0xFF, and the CRC-64 of all that."""
    body = b"REDIS0010" + random.Random(seed).randbytes(n) + b"\xff"
    return body + crc64_jones(body).to_bytes(8, "little")


def random_cuts(n: int, seed: int, pieces: int = 30) -> list[int]:
    return sorted(random.Random(seed).sample(range(1, n), min(pieces, n - 1)))


# ---------------------------------------------------------------------------- the stream check it feeds

def test_stream_check_takes_the_header_from_pieces_of_any_size() -> None:
    data = rdb_bytes(3000)
    for cuts in ([1, 2, 3, 5, 8], random_cuts(len(data), 7, 100), list(range(1, 40))):
        check = RdbStreamCheck("test")
        start = 0
        for end in [*cuts, len(data)]:
            check.feed(memoryview(data)[start:end])
            start = end
        ex = check.result("/x")
        assert (ex.magic, ex.rdb_version, ex.size, ex.checksum_ok) == ("REDIS", 10, len(data), True)


def test_stream_check_of_a_tiny_rdb_and_of_a_non_rdb() -> None:
    body = b"REDIS0009\xff"
    tiny = body + crc64_jones(body).to_bytes(8, "little")
    check = RdbStreamCheck("tiny")
    check.feed(tiny)
    assert check.result("/x").checksum_ok is True
    bad = RdbStreamCheck("bad")
    bad.feed(b"*2\r\n$3\r\nSET")
    with pytest.raises(Exception, match="not an RDB file"):
        bad.result("/x")
