"""A tiny RDB writer for the unit tests: files assembled byte by byte from the grammar in ``src/rdb.c``."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from elasticache_migrate.rdb import crc64_jones

__all__ = [
    "EVERY_TYPE_ENCODINGS", "aux", "every_type_body", "lzf_run", "ln", "module2_value", "module_id", "ms",
    "rdb", "s", "si", "stream", "write",
]  # fmt: skip


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


def write(tmp_path: Path, data: bytes, name: str = "dump.rdb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
