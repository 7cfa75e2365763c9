"""RDB header parsing and the diagnosis of files that are not RDBs (elasticache_migrate.rdb.header).

The files are assembled byte by byte from the grammar in Redis' and Valkey's ``src/rdb.c``
(tests/unit/rdb/rdb_writer.py); the functional tests check the same code against dumps written by a real
redis-server.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from elasticache_migrate.rdb import RdbFormatError, RdbHeader, read_header, read_header_file, scan_rdb, verify_checksum
from tests.unit.rdb.rdb_writer import rdb, write


@pytest.mark.parametrize("version", range(1, 13))
def test_header_redis_versions(version: int) -> None:
    raw = f"REDIS{version:04d}".encode()
    assert read_header(raw + b"\xfa...") == RdbHeader("REDIS", version, raw)


def test_header_valkey080_is_version_80(tmp_path: Path) -> None:
    assert read_header(b"VALKEY080\xfa") == RdbHeader("VALKEY", 80, b"VALKEY080")
    assert read_header_file(write(tmp_path, rdb(b"", magic="VALKEY", version=81))).version == 81


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dump.rdb")
        payload = rdb(b"")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"", "empty"),
        (gzip.compress(rdb(b""), mtime=0), "gzip"),
        (_tar_bytes(), "tar archive"),
        (b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", "AOF"),
        (b"$18\r\n" + rdb(b""), "strip the first line"),
        (b"file appendonly.aof.1.base.rdb seq 1 type b\n", "manifest"),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "XML"),
        (b"hello world, not a dump\n", "text"),
        (b"\x28\xb5\x2f\xfd\x00\x00\x00\x00\x00", "zstd"),
        (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "00 01 02"),
    ],
)
def test_header_rejects_non_rdb_and_says_what_it_is(data: bytes, hint: str) -> None:
    with pytest.raises(RdbFormatError, match="not an RDB") as err:
        read_header(data)
    assert hint in str(err.value)
    assert err.value.offset == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"REDIS00", "truncated at offset 7"),
        (b"REDIS00x1", "bad RDB version field"),
        (b"REDIS0000", "version 0 does not exist"),
        (b"VALKEY011", "only from version 80"),
        (b"VALKEY8x0", "bad RDB version field"),
    ],
)
def test_header_rejects_bad_versions(data: bytes, message: str) -> None:
    with pytest.raises(RdbFormatError, match=message):
        read_header(data)


def test_scan_and_verify_reject_non_rdb_file(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(b"REDIS0011" * 10))
    for fn in (scan_rdb, verify_checksum, read_header_file):
        with pytest.raises(RdbFormatError, match="gzip"):
            fn(path)
