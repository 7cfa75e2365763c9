"""The structure walk over every type and opcode (elasticache_migrate.rdb.walker, via scan_rdb).

The files are assembled byte by byte from the grammar in Redis' and Valkey's ``src/rdb.c``
(tests/unit/rdb/rdb_writer.py); the functional tests check the same code against dumps written by a real
redis-server.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from elasticache_migrate.rdb import RdbFormatError, RdbHeader, module_type_name, scan_rdb, verify_checksum
from tests.unit.rdb.rdb_writer import EVERY_TYPE_ENCODINGS, aux, ln, lzf_run, module_id, ms, rdb, s, si, write


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


def test_module_type_name() -> None:
    assert module_type_name(module_id("ReJSON-RL", 3)) == "ReJSON-RL"
    assert module_type_name(module_id("MBbloom--")) == "MBbloom--"


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
