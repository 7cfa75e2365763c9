"""scan_rdb / verify_checksum: checksums, trailing data, truncation and corruption (elasticache_migrate.rdb.scan).

The files are assembled byte by byte from the grammar in Redis' and Valkey's ``src/rdb.c``
(tests/unit/rdb/rdb_writer.py); the functional tests check the same code against dumps written by a real
redis-server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.rdb import Crc64Jones, RdbFormatError, scan_rdb, verify_checksum
from tests.unit.rdb.rdb_writer import aux, ln, lzf_run, ms, rdb, s, si, stream, write


def test_checksum_over_tiny_hand_built_rdb(tmp_path: Path) -> None:
    body = aux("redis-ver", s("7.0.15")) + b"\xfe\x00\xfb\x01\x00" + b"\x00" + s("k") + s("v")
    data = rdb(body)
    path = write(tmp_path, data)
    expected = Crc64Jones(data[:-8], backend="python").digest()
    assert verify_checksum(path) == (expected, expected)
    summary = scan_rdb(path)
    assert (summary.stored_checksum, summary.computed_checksum, summary.checksum_ok) == (expected, expected, True)
    assert summary.dbs == {0: 1} and summary.key_types == {"string": 1} and summary.aux == {"redis-ver": "7.0.15"}
    assert summary.eof_offset == len(data) - 9 and summary.trailing_bytes == 0 and summary.complete


def test_checksum_disabled_and_pre_v5(tmp_path: Path) -> None:
    body = b"\xfe\x00\x00" + s("k") + s("v")
    off = scan_rdb(write(tmp_path, rdb(body, checksum=False), "off.rdb"))
    assert (off.stored_checksum, off.checksum_ok) == (0, None) and off.computed_checksum != 0
    assert verify_checksum(tmp_path / "off.rdb")[0] == 0
    old = scan_rdb(write(tmp_path, rdb(body, version=4), "v4.rdb"))
    assert (old.stored_checksum, old.checksum_ok, old.dbs) == (0, None, {0: 1})
    with pytest.raises(RdbFormatError, match="no checksum"):
        verify_checksum(tmp_path / "v4.rdb")


def test_verify_checksum_short_file(tmp_path: Path) -> None:
    with pytest.raises(RdbFormatError, match="too short"):
        verify_checksum(write(tmp_path, b"REDIS0011\xff"))


def test_trailing_bytes_after_checksum_are_reported(tmp_path: Path) -> None:
    tail = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
    summary = scan_rdb(write(tmp_path, rdb(b"\xfe\x00\x00" + s("a") + s("1")) + tail))
    assert summary.checksum_ok and summary.trailing_bytes == len(tail) and "AOF tail" in summary.notes[0]


# --------------------------------------------------------------------------------------------------------
# Truncation and corruption


def test_every_truncation_is_an_rdb_format_error(tmp_path: Path) -> None:
    full = rdb(b"\xfe\x00\x00" + s("key") + lzf_run(b"z", 100) + b"\x0e" + s("q") + ln(1) + s(b"x" * 300))
    path = tmp_path / "cut.rdb"
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        with pytest.raises(RdbFormatError) as err:
            scan_rdb(path, chunk_size=16)
        if cut >= 9:
            assert f"truncated at offset {cut}" in str(err.value)
            assert err.value.offset == cut


def test_truncated_big_file_says_where(every_type: Path, tmp_path: Path) -> None:
    data = every_type.read_bytes()
    path = write(tmp_path, data[: len(data) // 2])
    with pytest.raises(RdbFormatError, match=rf"truncated at offset {len(data) // 2}: the file ends inside"):
        scan_rdb(path)
    path.write_bytes(data[:-3])
    with pytest.raises(RdbFormatError, match="checksum after the EOF opcode"):
        scan_rdb(path)


def test_flipped_payload_byte_fails_the_checksum(every_type: Path, tmp_path: Path) -> None:
    data = bytearray(every_type.read_bytes())
    at = data.find(b"value")
    data[at] ^= 0x01
    summary = scan_rdb(write(tmp_path, bytes(data)))
    assert summary.complete and summary.checksum_ok is False
    stored, computed = verify_checksum(tmp_path / "dump.rdb")
    assert stored != computed and (stored, computed) == (summary.stored_checksum, summary.computed_checksum)


def test_any_flipped_byte_is_an_error_or_a_bad_checksum(tmp_path: Path) -> None:
    body = aux("redis-ver", s("7.2.4")) + b"\xfe\x00\xfb\x03\x01" + b"\xfc" + ms(1900000000000)
    body += b"\x00" + s("k") + si(300) + b"\x12" + s("l") + ln(1) + ln(2) + s(b"lp" * 5)
    body += b"\x15" + s("st") + stream(21)
    full = rdb(body, version=11)
    path = tmp_path / "flip.rdb"
    for i in range(len(full)):
        data = bytearray(full)
        data[i] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            summary = scan_rdb(path, chunk_size=32)
        except RdbFormatError:
            continue
        assert summary.checksum_ok is False, f"flip at {i} went unnoticed"
