"""CRC-64/Jones: check value, streaming, both backends (elasticache_migrate.rdb.crc64).

The files are assembled byte by byte from the grammar in Redis' and Valkey's ``src/rdb.c``
(tests/unit/rdb/rdb_writer.py); the functional tests check the same code against dumps written by a real
redis-server.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from elasticache_migrate.rdb import Crc64Jones, crc64_jones, scan_rdb, verify_checksum


@pytest.mark.parametrize("backend", ["anycrc", "python"])
def test_crc_check_value_and_streaming(backend: str) -> None:
    if backend == "anycrc":
        pytest.importorskip("anycrc")
    assert Crc64Jones(b"123456789", backend=backend).digest() == 0xE9C6D914C4B8D9CA == Crc64Jones.CHECK
    data = random.Random(7).randbytes(5000)
    c = Crc64Jones(backend=backend)
    for i in range(0, len(data), 333):
        c.update(data[i : i + 333])
    assert c.digest() == crc64_jones(data) == Crc64Jones(memoryview(data), backend=backend).digest()
    assert c.backend == backend


def test_scan_and_verify_with_the_pure_python_crc(every_type: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from elasticache_migrate.rdb import crc64

    fast = scan_rdb(every_type)
    monkeypatch.setattr(crc64, "_crc", crc64._crc_python)
    assert scan_rdb(every_type, chunk_size=999) == fast
    assert verify_checksum(every_type) == (fast.stored_checksum, fast.computed_checksum)


def test_crc_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown CRC backend"):
        Crc64Jones(backend="zlib")
