"""RDB header, CRC and structure walk over hand-built files (no server).

The files are assembled byte by byte from the grammar in Redis' and Valkey's ``src/rdb.c``; the
functional tests check the same code against dumps written by a real redis-server.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import struct
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from elasticache_migrate.rdb import (
    Crc64Jones,
    RdbFormatError,
    RdbHeader,
    crc64_jones,
    module_type_name,
    read_header,
    read_header_file,
    scan_rdb,
    verify_checksum,
)

# --------------------------------------------------------------------------------------------------------
# A tiny RDB writer


def ln(n: int) -> bytes:
    """RDB length encoding."""
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def s(v: bytes | str) -> bytes:
    """A plain length-prefixed string."""
    b = v.encode() if isinstance(v, str) else v
    return ln(len(b)) + b


def si(i: int) -> bytes:
    """An integer-encoded string."""
    if -128 <= i < 128:
        return b"\xc0" + i.to_bytes(1, "little", signed=True)
    if -(1 << 15) <= i < 1 << 15:
        return b"\xc1" + i.to_bytes(2, "little", signed=True)
    return b"\xc2" + i.to_bytes(4, "little", signed=True)


def lzf_run(char: bytes, n: int) -> bytes:
    """An LZF-encoded string of ``n`` (>= 10) copies of ``char``: one literal, then back-references."""
    body = b"\x00" + char
    left = n - 1
    while left >= 3:
        take = min(left, 264)  # a back-reference copies len + 2 bytes: 3 to 264
        ext = take - 2
        body += (bytes([0xE0, ext - 7]) if ext >= 7 else bytes([ext << 5])) + b"\x00"
        left -= take
    if left:
        body += bytes([left - 1]) + char * left  # literal run
    return b"\xc3" + ln(len(body)) + ln(n) + body


def ms(t: int) -> bytes:
    return struct.pack("<q", t)


def rdb(body: bytes, magic: str = "REDIS", version: int = 10, checksum: bool | int = True) -> bytes:
    """Header + body + EOF + CRC (``checksum=False`` writes 0, as ``rdbchecksum no`` does)."""
    head = f"{magic}{version:04d}" if magic == "REDIS" else f"{magic}{version:03d}"
    data = head.encode() + body + b"\xff"
    if version < 5:
        return data
    crc = crc64_jones(data) if checksum is True else int(checksum)
    return data + crc.to_bytes(8, "little")


def module_id(name: str, encver: int = 1) -> int:
    charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    v = 0
    for c in name:
        v = (v << 6) | charset.index(c)
    return (v << 10) | encver


def aux(k: str, v: bytes) -> bytes:
    return b"\xfa" + s(k) + v


def stream(t: int) -> bytes:
    """A stream value with 2 listpacks, 2 groups, PEL entries and consumers, in layout ``t`` (15/19/21)."""
    out = ln(2) + s(bytes(16)) + s(b"LP" * 20) + s(bytes(range(16))) + s(b"lp2")
    out += ln(5) + ln(1700000000000) + ln(3)  # length, last id
    if t >= 19:
        out += ln(1) + ln(0) + ln(0) + ln(0) + ln(5)  # first id, max deleted id, entries added
    out += ln(2)
    for g in (b"g1", b"g2"):
        out += s(g) + ln(1700000000000) + ln(1)
        if t >= 19:
            out += ln(3)
        out += ln(2) + (bytes(16) + ms(1700000000001) + ln(1)) * 2  # global PEL
        out += ln(1) + s(b"consumer") + ms(1700000000002)
        if t >= 21:
            out += ms(1700000000003)
        out += ln(2) + bytes(16) * 2
    return out


def module2_value(name: str) -> bytes:
    """A module-v2 value with every sub-opcode, ending in MODULE_OPCODE_EOF."""
    return (
        ln(module_id(name))
        + ln(1) + ln(12345)  # SINT
        + ln(2) + ln(1 << 40)  # UINT
        + ln(3) + struct.pack("<f", 1.5)  # FLOAT
        + ln(4) + struct.pack("<d", 2.5)  # DOUBLE
        + ln(5) + s(b"payload")  # STRING
        + ln(0)
    )  # fmt: skip


def every_type_body() -> bytes:
    """Every opcode and value type of RDB 12, across three databases."""
    b = aux("redis-ver", s("7.4.0")) + aux("redis-bits", si(64)) + aux("ctime", si(1700000000))
    b += aux("used-mem", si(123456789)) + aux("lzf-aux", lzf_run(b"x", 300))
    b += b"\xf7" + ln(module_id("auxmodule")) + ln(2) + ln(2) + ln(2) + ln(7) + ln(0)  # MODULE_AUX
    b += b"\xf5" + s(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
    b += b"\xf6" + s(b"oldlib") + s(b"LUA") + ln(1) + s(b"desc") + s(b"return 1")
    b += b"\xfe" + ln(0) + b"\xfb" + ln(21) + ln(3)
    b += b"\xf4" + ln(1234) + ln(21) + ln(3)  # SLOT_INFO
    b += b"\x00" + s("str") + s("value")
    b += b"\xfc" + ms(1900000000000) + b"\x00" + s("int8") + si(-5)
    b += b"\xfd" + struct.pack("<i", 1900000000) + b"\x00" + s("int16") + si(1000)
    b += b"\xf8" + ln(77) + b"\x00" + s("int32") + si(100000)
    b += b"\xf9" + b"\x05" + b"\x00" + s("lzf") + lzf_run(b"a", 5000)
    b += b"\x00" + s("big") + s(os.urandom(70000))
    b += b"\x01" + s("list") + ln(3) + s("a") + si(1) + lzf_run(b"b", 40)
    b += b"\x02" + s("set") + ln(2) + s("m1") + s("m2")
    b += b"\x03" + s("zset1") + ln(4) + s("a") + b"\x031.5" + s("b") + b"\xfd" + s("c") + b"\xfe" + s("d") + b"\xff"
    b += b"\x04" + s("hash") + ln(2) + s("f1") + s("v1") + s("f2") + si(2)
    b += b"\x05" + s("zset2") + ln(2) + s("a") + struct.pack("<d", 1.0) + s("b") + struct.pack("<d", 2.0)
    b += b"\x07" + s("mod") + module2_value("testmodul")
    for t in (9, 10, 11, 12, 13, 16, 17, 20):
        b += bytes([t]) + s(f"blob{t}") + s(b"\x00" * (t * 3))
    b += b"\xfe" + ln(3) + b"\xfb" + ln(7) + ln(1)
    b += b"\x0e" + s("quicklist") + ln(2) + s(b"zl1") + s(b"zl2" * 30)
    b += b"\x12" + s("quicklist2") + ln(2) + ln(2) + s(b"lp") + ln(1) + s(b"plain")
    for t in (15, 19, 21):
        b += bytes([t]) + s(f"stream{t}") + stream(t)
    b += b"\xfc" + ms(1900000000000) + b"\x16" + s("hmeta_pre") + ln(2) + ln(0) + s("f") + s("v") + ln(1900000000000)
    b += s("g") + s("w")
    b += b"\x17" + s("hlpex_pre") + s(b"listpack-bytes")
    b += b"\x18" + s("hmeta") + ms(1900000000000) + ln(2) + ln(0) + s("f") + s("v") + ln(5) + s("g") + s("w")
    b += b"\x19" + s("hlpex") + ms(1900000000000) + s(b"listpack-bytes")
    b += b"\xfe" + ln(15) + b"\xfb" + ln(1) + ln(0) + b"\x00" + s("db15") + s("x")
    return b


EVERY_TYPE_ENCODINGS = {
    "string": 7, "list": 1, "set": 1, "zset": 1, "hash": 1, "zset_2": 1, "module_2": 1,
    "hash_zipmap": 1, "list_ziplist": 1, "set_intset": 1, "zset_ziplist": 1, "hash_ziplist": 1,
    "hash_listpack": 1, "zset_listpack": 1, "set_listpack": 1, "list_quicklist": 1, "list_quicklist_2": 1,
    "stream_listpacks": 1, "stream_listpacks_2": 1, "stream_listpacks_3": 1, "hash_metadata_pre_ga": 1,
    "hash_listpack_ex_pre_ga": 1, "hash_metadata": 1, "hash_listpack_ex": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rdb") / "every.rdb"
    path.write_bytes(rdb(every_type_body(), version=12))
    return path


def write(tmp_path: Path, data: bytes, name: str = "dump.rdb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------------------
# Header


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
        (gzip.compress(rdb(b"")), "gzip"),
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


# --------------------------------------------------------------------------------------------------------
# CRC


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


# --------------------------------------------------------------------------------------------------------
# Structure walk


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096, 1 << 20])
def test_every_type_and_opcode(every_type: Path, chunk_size: int) -> None:
    summary = scan_rdb(every_type, chunk_size=chunk_size)
    assert summary.complete and summary.checksum_ok is True and summary.stop_reason is None
    assert summary.header.version == 12
    assert summary.encodings == EVERY_TYPE_ENCODINGS
    assert summary.dbs == {0: 20, 3: 9, 15: 1}
    assert summary.key_types == {"string": 7, "list": 4, "set": 3, "zset": 4, "hash": 8, "stream": 3, "module": 1}
    assert summary.db_key_types[3] == {"list": 2, "stream": 3, "hash": 4}
    assert summary.resize_hints == {0: (21, 3), 3: (7, 1), 15: (1, 0)}
    assert summary.expires == 3
    assert summary.functions == 2
    assert summary.module_types == ["auxmodule", "testmodul"]
    assert any("ElastiCache loads no modules" in note for note in summary.notes)
    assert summary.aux == {
        "redis-ver": "7.4.0", "redis-bits": "64", "ctime": "1700000000", "used-mem": "123456789",
        "lzf-aux": "x" * 300,
    }  # fmt: skip
    assert summary.opcodes == {
        "aux": 5, "module_aux": 1, "function2": 1, "function_pre_ga": 1, "selectdb": 3, "resizedb": 3,
        "slot_info": 1, "expiretime_ms": 2, "expiretime": 1, "idle": 1, "freq": 1, "eof": 1,
    }  # fmt: skip
    assert summary.keys == 30
    assert verify_checksum(every_type) == (summary.stored_checksum, summary.computed_checksum)


def test_valkey_hash_2_and_slot_import(tmp_path: Path) -> None:
    body = aux("valkey-ver", s("9.0.0")) + b"\xf3" + s("j" * 40) + ln(2) + ln(0) + ln(100) + ln(200) + ln(300)
    body += b"\xfe\x00\xfb\x02\x00"
    body += b"\x16" + s("h") + ln(2) + s("a") + si(1) + ms(1900000000000) + s("b") + si(2) + ms(-1)
    body += b"\x00" + s("k") + s("v")
    summary = scan_rdb(write(tmp_path, rdb(body, magic="VALKEY", version=80)))
    assert summary.header == RdbHeader("VALKEY", 80, b"VALKEY080")
    assert summary.complete and summary.checksum_ok
    assert summary.encodings == {"hash_2": 1, "string": 1}
    assert summary.opcodes["slot_import"] == 1
    # The same type byte means something else in a Redis RDB 12, and 243 is no opcode there.
    with pytest.raises(RdbFormatError, match="unknown RDB type or opcode 243"):
        scan_rdb(write(tmp_path, rdb(body, version=12), "redis.rdb"))


def test_module_pre_ga_stops_with_complete_false(tmp_path: Path) -> None:
    body = b"\xfe\x00" + b"\x00" + s("a") + s("1") + b"\x06" + s("m") + ln(module_id("ReJSON-RL")) + b"opaque"
    path = write(tmp_path, rdb(body, version=8))
    summary = scan_rdb(path)
    assert not summary.complete
    assert "ReJSON-RL" in (summary.stop_reason or "") and "ElastiCache loads no modules" in (summary.stop_reason or "")
    assert summary.module_types == ["ReJSON-RL"]
    assert summary.dbs == {0: 2} and summary.key_types == {"string": 1, "module": 1}
    assert summary.checksum_ok is True  # computed over the whole file even though the walk stopped
    assert summary.eof_offset is None


@pytest.mark.parametrize(("magic", "version"), [("REDIS", 13), ("VALKEY", 81)])
def test_newer_version_with_unknown_record_is_incomplete(tmp_path: Path, magic: str, version: int) -> None:
    body = b"\xfe\x00" + b"\x00" + s("a") + s("1") + b"\x1a" + s("new") + s("??")
    summary = scan_rdb(write(tmp_path, rdb(body, magic=magic, version=version)))
    assert not summary.complete and "newer than this scanner" in (summary.stop_reason or "")
    assert summary.dbs == {0: 1} and summary.checksum_ok is True


def test_newer_version_with_known_records_only_completes_with_a_note(tmp_path: Path) -> None:
    summary = scan_rdb(write(tmp_path, rdb(b"\xfe\x00\x00" + s("a") + s("1"), version=13)))
    assert summary.complete and summary.checksum_ok and "newer than this scanner" in summary.notes[0]


def test_unknown_type_in_known_version_names_it(tmp_path: Path) -> None:
    body = b"\xfe\x00" + b"\x00" + s("a") + s("1") + b"\x1a" + s("new") + s("??")
    with pytest.raises(RdbFormatError, match=r"unknown RDB type or opcode 26 \(0x1a\) at offset 16") as err:
        scan_rdb(write(tmp_path, rdb(body, version=11)))
    assert err.value.offset == 16


def test_unknown_string_encoding(tmp_path: Path) -> None:
    with pytest.raises(RdbFormatError, match="unknown string encoding 0xc4 at offset 12"):
        scan_rdb(write(tmp_path, rdb(b"\xfe\x00\x00" + b"\xc4abc")))


def test_trailing_bytes_after_checksum_are_reported(tmp_path: Path) -> None:
    tail = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
    summary = scan_rdb(write(tmp_path, rdb(b"\xfe\x00\x00" + s("a") + s("1")) + tail))
    assert summary.checksum_ok and summary.trailing_bytes == len(tail) and "AOF tail" in summary.notes[0]


def test_module_type_name() -> None:
    assert module_type_name(module_id("ReJSON-RL", 3)) == "ReJSON-RL"
    assert module_type_name(module_id("MBbloom--")) == "MBbloom--"


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


def test_fast_path_agrees_with_byte_by_byte_walk(tmp_path: Path) -> None:
    """Thousands of small records in every shape the in-window fast path takes or declines."""
    rnd = random.Random(42)
    keys = [lambda i: s(f"k{i}"), lambda i: s(f"key-{i}-" + "x" * 70), lambda i: si(i), lambda i: b"\x80" + (
        len(f"long{i}").to_bytes(4, "big")) + f"long{i}".encode()]  # fmt: skip
    values = [
        lambda: s("v"), lambda: s("w" * rnd.randrange(64, 400)), lambda: si(rnd.randrange(-(2**31), 2**31)),
        lambda: si(rnd.randrange(-100, 100)), lambda: b"\x80" + (3).to_bytes(4, "big") + b"abc",
        lambda: lzf_run(b"q", rnd.randrange(10, 600)), lambda: s(b""),
    ]  # fmt: skip
    prefixes = [b"", b"", b"\xfc" + ms(1900000000000), b"\xf9\x07", b"\xf8" + ln(5), b"\xf8" + ln(5000),
                b"\xf8" + ln(1 << 33), b"\xfc" + ms(1) + b"\xf9\x01"]  # fmt: skip
    body = b"\xfe\x00"
    expected: Counter[int] = Counter()
    expires = 0
    db = 0
    for i in range(4000):
        if rnd.random() < 0.01:
            db = rnd.randrange(4)
            body += b"\xfe" + ln(db)
        prefix = rnd.choice(prefixes)
        expires += b"\xfc" in prefix[:1]
        if rnd.random() < 0.05:
            body += prefix + b"\x01" + rnd.choice(keys)(i) + ln(2) + s("a") + si(1)
        else:
            body += prefix + rnd.choice([b"\x00", b"\x0b", b"\x10"]) + rnd.choice(keys)(i) + rnd.choice(values)()
        expected[db] += 1
    path = write(tmp_path, rdb(body, version=11))
    results = [scan_rdb(path, chunk_size=c) for c in (1, 33, 1000, 1 << 20)]
    assert all(r == results[0] for r in results)
    summary = results[-1]
    assert summary.checksum_ok and summary.dbs == {d: n for d, n in expected.items() if n}
    assert summary.expires == expires
