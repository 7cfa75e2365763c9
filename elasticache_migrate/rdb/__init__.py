"""Pure, streaming inspection of Redis / Valkey RDB files (no network, no server).

What a migration needs to know about an ``.rdb`` before ElastiCache is asked to load it: which format
version wrote it, what it holds (databases, key types, expires, functions, module types) and whether the
trailing CRC-64 still matches. Everything here reads the file sequentially through a bounded buffer, so a
multi-gigabyte dump costs a few MiB of memory.

File layout (``src/rdb.c`` in Redis and Valkey)::

    "REDIS0011" | "VALKEY080"            9-byte magic + version
    { opcode | type key value }*         AUX, SELECTDB, RESIZEDB, EXPIRETIME_MS, ... and key/value records
    0xFF                                 EOF opcode
    crc64 (8 bytes, little endian)       over every byte before it; 0 when saved with ``rdbchecksum no``

Valkey 9 writes the magic ``VALKEY`` with a three-digit version (``VALKEY080``): :class:`RdbHeader`
reports it as version 80. Its grammar is RDB 11 plus type 22 (``hash_2``, a hash whose fields carry
expiry times) and opcode 243 (``SLOT_IMPORT``). Redis 7.4/8.x RDB 12 uses types 22-25 for hashes with
field TTLs instead, so the meaning of type 22 depends on the magic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Callable

__all__ = [
    "Crc64Jones",
    "RdbFormatError",
    "RdbHeader",
    "RdbSummary",
    "crc64_jones",
    "module_type_name",
    "read_header",
    "read_header_file",
    "scan_rdb",
    "verify_checksum",
]

PathLike = str | os.PathLike[str]

# Newest format versions whose grammar this module knows completely.
KNOWN_REDIS_VERSION = 12
KNOWN_VALKEY_VERSION = 80

_DEFAULT_CHUNK = 1 << 20

# ---------------------------------------------------------------------------------------------------------
# CRC-64 "Jones" (reflected, poly 0xad93d23594c935a9, init 0, no final xor): what Redis appends to an RDB.

_CRC_POLY_REFLECTED = 0x95AC9329AC4BC9B5  # bit-reversed 0xad93d23594c935a9


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE: list[int] | None = None


def _crc_python(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """Table-driven fallback, about 8 MB/s: for machines without anycrc."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _make_table()
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _load_anycrc() -> Callable[..., int] | None:
    try:
        import anycrc  # type: ignore[import-untyped]

        model = anycrc.Model("CRC64-REDIS")
        if model.calc(b"123456789") != Crc64Jones.CHECK:  # a wrong model would pass silently otherwise
            return None
        return model.calc  # type: ignore[no-any-return]
    except Exception:  # missing package or model name: fall back to pure Python
        return None


class Crc64Jones:
    """Streaming CRC-64/Jones as Redis uses it for RDB and DUMP payloads.

    ``Crc64Jones().update(b"123456789").digest() == Crc64Jones.CHECK``. Uses anycrc's ``CRC64-REDIS`` model
    (over 10 GB/s) when installed, else a pure-Python table (about 8 MB/s).
    """

    CHECK = 0xE9C6D914C4B8D9CA

    def __init__(self, data: bytes | bytearray | memoryview = b"", *, backend: str | None = None) -> None:
        """Start a CRC, optionally over ``data``.

        Args:
            data: first bytes to include.
            backend: ``"anycrc"``, ``"python"`` or None for the fastest available.

        Raises:
            ValueError: if ``backend`` is unknown or ``"anycrc"`` is not installed.
        """
        if backend not in (None, "anycrc", "python"):
            raise ValueError(f"unknown CRC backend {backend!r}: use 'anycrc' or 'python'")
        fast = _ANYCRC if backend in (None, "anycrc") else None
        if backend == "anycrc" and fast is None:
            raise ValueError("anycrc with model CRC64-REDIS is not available")
        self._calc: Callable[..., int] = fast or _crc_python
        self.backend = "anycrc" if fast else "python"
        self._crc = 0
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> Crc64Jones:
        """Add ``data`` to the running CRC and return self."""
        if data:
            self._crc = self._calc(data, self._crc)
        return self

    def digest(self) -> int:
        """The CRC of everything added so far, as an unsigned 64-bit int."""
        return self._crc


_ANYCRC = _load_anycrc()
_crc: Callable[..., int] = _ANYCRC or _crc_python


def crc64_jones(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """One-shot CRC-64/Jones of ``data`` continuing from ``crc`` (``crc64_jones(b"123456789") == CHECK``)."""
    return _crc(data, crc) if data else crc


# ---------------------------------------------------------------------------------------------------------
# Header


class RdbFormatError(ValueError):
    """The file is not an RDB, is truncated, or breaks the RDB grammar; ``offset`` says where."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class RdbHeader:
    """The 9-byte RDB header.

    ``version`` is the RDB format version: 1-12 after ``REDIS`` (6 = Redis 2.6-3.0 ... 12 = Redis 7.4/8.0);
    after ``VALKEY`` the three digits as written, so ``VALKEY080`` (Valkey 9.0/9.1) is 80.
    """

    magic: str
    version: int
    raw: bytes


def _describe_non_rdb(data: bytes) -> str:
    """A guess at what a non-RDB file is, to put in the error message."""
    if not data:
        return "the file is empty (0 bytes)"
    head = data[:16]
    magics = [
        (b"\x1f\x8b", "gzip-compressed data: gunzip it first"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"),
        (b"\x04\x22\x4d\x18", "lz4-compressed data: decompress it first"),
        (b"BZh", "bzip2-compressed data: decompress it first"),
        (b"\xfd7zXZ\x00", "xz-compressed data: decompress it first"),
        (b"PK\x03\x04", "a zip archive: extract the .rdb first"),
    ]
    for magic, what in magics:
        if head.startswith(magic):
            return f"it looks like {what}"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "it looks like a tar archive (e.g. a Docker get_archive stream): extract the .rdb first"
    if head[:1] == b"*" and head[1:2].isdigit():
        return "it looks like an AOF (RESP commands such as '*2\\r\\n'), not an RDB snapshot"
    if head[:1] == b"$" and head[1:2].isdigit():
        line_end = data.find(b"\r\n")
        if line_end > 0 and data[line_end + 2 : line_end + 7] in (b"REDIS", b"VALKE"):
            return "it is a replication payload with a '$<length>\\r\\n' prefix: strip the first line"
        return "it looks like a RESP bulk reply ('$<length>'), not an RDB"
    if head.startswith(b"file "):
        return "it looks like a Redis 7 AOF manifest (appendonly.aof.manifest), not an RDB"
    if head.lstrip()[:1] == b"<":
        return "it looks like XML/HTML (an S3 or proxy error page?)"
    if head.lstrip()[:1] in (b"{", b"["):
        return "it looks like JSON"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return f"it looks like text starting {head!r}"
    return f"it starts with bytes {head.hex(' ')}"


def read_header(data: bytes) -> RdbHeader:
    """Parse the RDB header from the start of a file.

    Args:
        data: the file's first bytes: at least 9; give up to 512 for a better diagnosis of non-RDB input.

    Returns:
        The magic, format version and raw header bytes.

    Raises:
        RdbFormatError: for anything that is not an RDB header, naming what it looks like instead.
    """
    data = bytes(data)
    if data.startswith(b"REDIS"):
        magic, digits = "REDIS", data[5:9]
        width = 4
    elif data.startswith(b"VALKEY"):
        magic, digits = "VALKEY", data[6:9]
        width = 3
    else:
        what = _describe_non_rdb(data)
        raise RdbFormatError(f"not an RDB file (no REDIS/VALKEY magic at offset 0): {what}", 0)
    if len(data) < 9:
        n = len(data)
        raise RdbFormatError(f"truncated at offset {n}: the 9-byte RDB header is incomplete", n)
    if len(digits) != width or not digits.isdigit():
        off = 9 - width
        raise RdbFormatError(f"bad RDB version field {digits!r} after {magic} at offset {off}", off)
    version = int(digits)
    if version < 1:
        raise RdbFormatError(f"RDB version {version} does not exist (offset {9 - width})", 9 - width)
    if magic == "VALKEY" and version < 80:
        raise RdbFormatError(f"VALKEY magic with version {version}: Valkey uses it only from version 80", 6)
    return RdbHeader(magic=magic, version=version, raw=data[:9])


def read_header_file(path: PathLike) -> RdbHeader:
    """Read and parse the header of the file at ``path``.

    Args:
        path: the RDB file.

    Returns:
        The parsed header.

    Raises:
        RdbFormatError: if the file does not start with an RDB header.
        OSError: if the file cannot be read.
    """
    with open(path, "rb") as f:
        return read_header(f.read(512))


# ---------------------------------------------------------------------------------------------------------
# Streaming reader


class _Eof(Exception):
    """The file ended where the grammar needed ``needed`` more bytes."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Reader:
    """A bounded window on a file with a running CRC of every byte that leaves the window.

    Invariant: ``crc`` covers file bytes ``[0, base)`` and ``buf`` holds file bytes ``[base, base+len(buf))``.
    """

    __slots__ = ("f", "size", "chunk", "buf", "pos", "base", "crc")

    def __init__(self, f: IO[bytes], size: int, chunk: int) -> None:
        self.f = f
        self.size = size
        self.chunk = max(1, chunk)
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.crc = 0

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _refill(self, n: int) -> None:
        """Make at least ``n`` bytes available at ``pos``."""
        buf, pos = self.buf, self.pos
        if pos:
            self.crc = _crc(memoryview(buf)[:pos], self.crc)
            self.base += pos
        keep = buf[pos:]
        more = self.f.read(max(self.chunk, n - len(keep)))
        self.buf = keep + more if keep else more
        self.pos = 0
        if len(self.buf) < n:
            raise _Eof(n - len(self.buf))

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            self._refill(1)
            pos = 0
        self.pos = pos + 1
        return self.buf[pos]

    def take(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > len(self.buf):
            if self.base + pos + n > self.size:
                raise _Eof(self.base + pos + n - self.size)
            self._refill(n)
            pos = 0
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def skip(self, n: int) -> None:
        pos = self.pos + n
        buf = self.buf
        if pos <= len(buf):
            self.pos = pos
            return
        if self.base + pos > self.size:
            raise _Eof(self.base + pos - self.size)
        # Leave the window: CRC what is left of it, then stream the rest of the skip through the CRC.
        self.crc = _crc(buf, self.crc)
        self.base += len(buf)
        n = pos - len(buf)
        self.buf, self.pos = b"", 0
        while n >= self.chunk:
            data = self.f.read(self.chunk)
            if not data:
                raise _Eof(n)
            self.crc = _crc(data, self.crc)
            self.base += len(data)
            n -= len(data)
        data = self.f.read(self.chunk)
        if len(data) < n:
            raise _Eof(n - len(data))
        self.buf, self.pos = data, n

    def length(self) -> int:
        """An RDB length (6/14/32/64-bit); a string-encoding marker here is an error."""
        b = self.byte()
        if b < 0x40:
            return b
        if b < 0x80:
            return ((b & 0x3F) << 8) | self.byte()
        if b == 0x80:
            return int.from_bytes(self.take(4), "big")
        if b == 0x81:
            return int.from_bytes(self.take(8), "big")
        off = self.offset - 1
        raise RdbFormatError(f"expected a length at offset {off}, found byte 0x{b:02x}", off)

    def count(self, per_item: int = 1) -> int:
        """A length that counts items of at least ``per_item`` bytes each, checked against the file size."""
        n = self.length()
        short = n * per_item - (self.size - self.offset)
        if short > 0:  # cannot fit in what is left: truncated (or a corrupt count)
            raise _Eof(short)
        return n

    def skip_string(self) -> None:
        b = self.byte()
        if b < 0x40:
            n = b
        elif b < 0x80:
            n = ((b & 0x3F) << 8) | self.byte()
        elif b == 0x80:
            n = int.from_bytes(self.take(4), "big")
        elif b == 0x81:
            n = int.from_bytes(self.take(8), "big")
        elif b == 0xC0:
            n = 1
        elif b == 0xC1:
            n = 2
        elif b == 0xC2:
            n = 4
        elif b == 0xC3:  # LZF: compressed length, uncompressed length, data
            n = self.length()
            self.length()
        else:
            off = self.offset - 1
            raise RdbFormatError(f"unknown string encoding 0x{b:02x} at offset {off}", off)
        self.skip(n)

    def skip_strings(self, count: int, extra: int = 0) -> None:
        """Skip ``count`` strings, each followed by ``extra`` fixed bytes: the hot loop, kept on locals."""
        buf, pos = self.buf, self.pos
        end = len(buf)
        frm = int.from_bytes
        while count > 0:
            if pos + 9 <= end:
                b = buf[pos]
                if b < 0x40:
                    step = 1 + b
                elif b < 0x80:
                    step = 2 + (((b & 0x3F) << 8) | buf[pos + 1])
                elif b == 0xC0:
                    step = 2
                elif b == 0xC1:
                    step = 3
                elif b == 0xC2:
                    step = 5
                elif b == 0x80:
                    step = 5 + frm(buf[pos + 1 : pos + 5], "big")
                elif b == 0x81:
                    step = 9 + frm(buf[pos + 1 : pos + 9], "big")
                else:
                    step = -1  # LZF or an invalid marker: the slow path decodes or reports it
                if step >= 0:
                    pos += step + extra
                    count -= 1
                    if pos > end:  # the string runs past the window
                        self.pos = end
                        self.skip(pos - end)
                        buf, pos = self.buf, self.pos
                        end = len(buf)
                    continue
            # Slow path: near the end of the window, or an LZF / invalid marker.
            self.pos = pos
            self.skip_string()
            if extra:
                self.skip(extra)
            count -= 1
            buf, pos = self.buf, self.pos
            end = len(buf)
        self.pos = pos

    def simple_records(self, blob: bytes, counts: list[int], opcode_counts: list[int]) -> tuple[int, int]:
        """Count a run of keys whose value is one string blob, on locals: the common case, made cheap.

        A record may carry EXPIRETIME_MS / IDLE / FREQ prefixes. Stops at anything else, at long (32/64-bit)
        or LZF keys and near the window's end, leaving ``pos`` at that record for the general walk.
        Returns (keys, keys with an expire).
        """
        buf, pos = self.buf, self.pos
        end = len(buf)
        limit = end - 32
        keys = expires = 0
        while pos <= limit:
            p = pos
            t = buf[p]
            fc = f8 = f9 = 0
            while t == 0xFC or t == 0xF9 or t == 0xF8:
                if t == 0xFC:
                    p += 9
                    fc += 1
                elif t == 0xF9:
                    p += 2
                    f9 += 1
                else:
                    b = buf[p + 1]
                    if b >= 0x80:
                        break
                    p += 2 if b < 0x40 else 3
                    f8 += 1
                if p > limit:
                    break
                t = buf[p]
            if p > limit or not blob[t]:
                break
            b = buf[p + 1]  # key: short lengths and integer encodings only
            if b < 0x40:
                p += 2 + b
            elif b < 0x80:
                p += 3 + (((b & 0x3F) << 8) | buf[p + 2])
            elif 0xC0 <= b <= 0xC2:
                p += 2 + (1 << (b - 0xC0))  # type byte, marker, 1/2/4 bytes
            else:
                break
            if p + 9 > end:
                break
            b = buf[p]  # value
            if b < 0x40:
                p += 1 + b
            elif b < 0x80:
                p += 2 + (((b & 0x3F) << 8) | buf[p + 1])
            elif b == 0x80:
                p += 5 + int.from_bytes(buf[p + 1 : p + 5], "big")
            elif 0xC0 <= b <= 0xC2:
                p += 1 + (1 << (b - 0xC0))
            else:
                break
            if p > end:
                break
            pos = p
            counts[t] += 1
            keys += 1
            if fc or f8 or f9:
                if fc:
                    expires += 1
                    opcode_counts[0xFC] += fc
                opcode_counts[0xF8] += f8
                opcode_counts[0xF9] += f9
        self.pos = pos
        return keys, expires

    def read_string(self) -> bytes:
        """A string value, decoded: integer encodings become their decimal text, LZF is decompressed."""
        start = self.offset
        b = self.byte()
        if b < 0xC0:
            self.pos -= 1
            return self.take(self.length())
        if b == 0xC0:
            return str(int.from_bytes(self.take(1), "little", signed=True)).encode()
        if b == 0xC1:
            return str(int.from_bytes(self.take(2), "little", signed=True)).encode()
        if b == 0xC2:
            return str(int.from_bytes(self.take(4), "little", signed=True)).encode()
        if b == 0xC3:
            clen = self.length()
            ulen = self.length()
            return _lzf_decompress(self.take(clen), ulen, start)
        raise RdbFormatError(f"unknown string encoding 0x{b:02x} at offset {start}", start)

    def crc_through(self, upto: int) -> int:
        """CRC of file bytes ``[0, upto)``; reads ahead when ``upto`` lies beyond the window."""
        end = self.base + len(self.buf)
        if upto <= end:
            return _crc(memoryview(self.buf)[: upto - self.base], self.crc)
        crc = _crc(self.buf, self.crc)
        off = end
        while off < upto:
            data = self.f.read(min(max(self.chunk, 1 << 20), upto - off))
            if not data:
                break
            crc = _crc(data, crc)
            off += len(data)
        return crc


def _lzf_decompress(data: bytes, ulen: int, offset: int) -> bytes:
    """LZF (liblzf) decompression, for the few short strings this module decodes (AUX values)."""
    out = bytearray()
    i, n = 0, len(data)
    try:
        while i < n:
            ctrl = data[i]
            i += 1
            if ctrl < 32:  # literal run of ctrl + 1 bytes
                out += data[i : i + ctrl + 1]
                i += ctrl + 1
                continue
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise IndexError
            for _ in range(length + 2):  # may overlap the bytes being written
                out.append(out[ref])
                ref += 1
    except IndexError:
        raise RdbFormatError(f"corrupt LZF string at offset {offset}", offset) from None
    if len(out) != ulen:
        raise RdbFormatError(f"LZF string at offset {offset} expands to {len(out)} bytes, not {ulen}", offset)
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------
# Grammar tables

_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

_COMMON_TYPES = {
    0: ("string", "string"),
    1: ("list", "list"),
    2: ("set", "set"),
    3: ("zset", "zset"),
    4: ("hash", "hash"),
    5: ("zset_2", "zset"),
    6: ("module_pre_ga", "module"),
    7: ("module_2", "module"),
    9: ("hash_zipmap", "hash"),
    10: ("list_ziplist", "list"),
    11: ("set_intset", "set"),
    12: ("zset_ziplist", "zset"),
    13: ("hash_ziplist", "hash"),
    14: ("list_quicklist", "list"),
    15: ("stream_listpacks", "stream"),
    16: ("hash_listpack", "hash"),
    17: ("zset_listpack", "zset"),
    18: ("list_quicklist_2", "list"),
    19: ("stream_listpacks_2", "stream"),
    20: ("set_listpack", "set"),
    21: ("stream_listpacks_3", "stream"),
}
# Redis 7.4+ (RDB 12): hashes with field TTLs. Valkey 9 (RDB 80) gives 22 another layout.
_REDIS_TYPES = {
    **_COMMON_TYPES,
    22: ("hash_metadata_pre_ga", "hash"),
    23: ("hash_listpack_ex_pre_ga", "hash"),
    24: ("hash_metadata", "hash"),
    25: ("hash_listpack_ex", "hash"),
}
_VALKEY_TYPES = {**_COMMON_TYPES, 22: ("hash_2", "hash")}

# Values that are one string blob (plain string, ziplist, listpack, intset, zipmap).
_BLOB_TYPES = frozenset({0, 9, 10, 11, 12, 13, 16, 17, 20})

_OPCODES = {
    0xF3: "slot_import",  # Valkey 9; Redis 8.6 (RDB 13) reuses 243 for KEY_META
    0xF4: "slot_info",
    0xF5: "function2",
    0xF6: "function_pre_ga",
    0xF7: "module_aux",
    0xF8: "idle",
    0xF9: "freq",
    0xFA: "aux",
    0xFB: "resizedb",
    0xFC: "expiretime_ms",
    0xFD: "expiretime",
    0xFE: "selectdb",
    0xFF: "eof",
}
_REDIS_OPCODES = frozenset(range(0xF4, 0x100))
_VALKEY_OPCODES = frozenset(range(0xF3, 0x100))


def module_type_name(module_id: int) -> str:
    """The 9-character module type name packed in the top 54 bits of a 64-bit module id."""
    v = module_id >> 10
    chars = []
    for _ in range(9):
        chars.append(_MODULE_CHARSET[v & 63])
        v >>= 6
    return "".join(reversed(chars))


# ---------------------------------------------------------------------------------------------------------
# Summary and walk


@dataclass
class RdbSummary:
    """What :func:`scan_rdb` found.

    ``checksum_ok`` is None when there is nothing to compare: the stored CRC is 0 (saved with
    ``rdbchecksum no``) or the version (< 5) has no checksum. ``complete`` is False when the walk stopped
    before EOF on data it cannot skip (see ``stop_reason``); counts then cover the part before that point,
    while the checksum fields still cover the whole file.
    """

    header: RdbHeader
    size: int
    aux: dict[str, str]
    dbs: dict[int, int]
    key_types: dict[str, int]
    expires: int
    module_types: list[str]
    functions: int
    stored_checksum: int
    computed_checksum: int
    checksum_ok: bool | None
    complete: bool = True
    stop_reason: str | None = None
    db_key_types: dict[int, dict[str, int]] = field(default_factory=dict)
    encodings: dict[str, int] = field(default_factory=dict)
    opcodes: dict[str, int] = field(default_factory=dict)
    resize_hints: dict[int, tuple[int, int]] = field(default_factory=dict)
    eof_offset: int | None = None
    trailing_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> int:
        """Keys seen in all databases."""
        return sum(self.dbs.values())


class _Stop(Exception):
    """The walk cannot go on (module data without its module, a format newer than this code)."""


class _Walker:
    def __init__(self, r: _Reader, header: RdbHeader) -> None:
        self.r = r
        self.header = header
        valkey = header.magic == "VALKEY"
        self.valkey = valkey
        self.types = _VALKEY_TYPES if valkey else _REDIS_TYPES
        self.opcodes = _VALKEY_OPCODES if valkey else _REDIS_OPCODES
        known = KNOWN_VALKEY_VERSION if valkey else KNOWN_REDIS_VERSION
        self.newer = header.version > known
        self.aux: dict[str, str] = {}
        self.db_counts: dict[int, list[int]] = {}
        self.opcode_counts = [0] * 256
        self.expires = 0
        self.functions = 0
        self.module_types: list[str] = []
        self.resize_hints: dict[int, tuple[int, int]] = {}
        self.notes: list[str] = []

    def _module(self, module_id: int, aux: bool) -> None:
        name = module_type_name(module_id)
        if name not in self.module_types:
            self.module_types.append(name)
            where = "module AUX data" if aux else "values of module type"
            self.notes.append(f"contains {where} {name!r}: ElastiCache loads no modules")

    def _module_values(self) -> None:
        """Skip a module-v2 value: self-describing opcodes until MODULE_OPCODE_EOF."""
        r = self.r
        while True:
            op = r.length()
            if op == 0:
                return
            if op in (1, 2):
                r.length()
            elif op == 3:
                r.skip(4)
            elif op == 4:
                r.skip(8)
            elif op == 5:
                r.skip_string()
            else:
                off = r.offset
                raise RdbFormatError(f"unknown module value opcode {op} before offset {off}", off)

    def _stream(self, t: int) -> None:
        r = self.r
        r.skip_strings(2 * r.count(2))  # listpacks: master id (16 bytes) + listpack blob each
        for _ in range(3):  # length, last id ms, last id seq
            r.length()
        if t >= 19:  # first id, max deleted id, entries added
            for _ in range(5):
                r.length()
        for _ in range(r.count(4)):  # consumer groups
            r.skip_string()
            r.length()
            r.length()
            if t >= 19:
                r.length()  # entries read
            for _ in range(r.count(25)):  # global PEL: raw id, delivery time, delivery count
                r.skip(24)
                r.length()
            for _ in range(r.count(10)):  # consumers
                r.skip_string()
                r.skip(16 if t >= 21 else 8)  # seen time (+ active time)
                r.skip(16 * r.count(16))  # consumer PEL: raw ids

    def _value(self, t: int) -> None:
        """Skip the value of a non-blob type (the key has been read)."""
        r = self.r
        if t in (1, 2, 14):  # list / set of strings, quicklist of ziplists
            r.skip_strings(r.count())
        elif t == 4:
            r.skip_strings(2 * r.count(2))
        elif t == 5:
            r.skip_strings(r.count(9), 8)
        elif t == 18:
            for _ in range(r.count(2)):
                start = r.offset
                container = r.length()
                if container not in (1, 2):
                    raise RdbFormatError(f"bad quicklist container {container} at offset {start}", start)
                r.skip_string()
        elif t == 3:
            for _ in range(r.count(2)):
                r.skip_string()
                n = r.byte()
                if n < 253:
                    r.skip(n)
        elif t in (15, 19, 21):
            self._stream(t)
        elif t == 7:
            self._module(r.length(), aux=False)
            self._module_values()
        elif t == 6:  # Redis 4.0 release candidates: no annotations, so the payload's end is unknowable
            module_id = r.length()
            self._module(module_id, aux=False)
            raise _Stop(
                f"contains module type {module_type_name(module_id)!r} in the 4.0-rc format (RDB type 6), "
                "which cannot be skipped without the module; ElastiCache loads no modules"
            )
        elif t == 22 and self.valkey:  # hash_2: field, value, expire ms (-1 = none)
            for _ in range(r.count(10)):
                r.skip_strings(1)
                r.skip_strings(1, 8)
        elif t == 25:  # hash_listpack_ex: min expire + listpack
            r.skip(8)
            r.skip_string()
        elif t == 23:
            r.skip_string()
        elif t in (22, 24):  # hash_metadata: [min expire] then (ttl, field, value)*
            if t == 24:
                r.skip(8)
            for _ in range(r.count(3)):
                r.length()
                r.skip_strings(2)
        else:  # pragma: no cover - callers only pass known types
            raise AssertionError(t)

    def _opcode(self, t: int, db: int) -> None:
        """Skip or record an opcode other than EOF, SELECTDB and the expire times."""
        r = self.r
        if t == 0xFA:
            key = r.read_string().decode("utf-8", "backslashreplace")
            self.aux[key] = r.read_string().decode("utf-8", "backslashreplace")
        elif t == 0xFB:
            self.resize_hints[db] = (r.length(), r.length())
        elif t == 0xF8:
            r.length()
        elif t == 0xF9:
            r.skip(1)
        elif t == 0xF5:
            r.skip_string()
            self.functions += 1
        elif t == 0xF6:  # Redis 7.0 rc1/rc2: name, engine, [description], code
            r.skip_strings(2)
            if r.length():
                r.skip_string()
            r.skip_string()
            self.functions += 1
        elif t == 0xF7:
            start = r.offset
            module_id = r.length()
            when_opcode = r.length()
            r.length()
            if when_opcode != 2:
                raise RdbFormatError(f"bad module AUX 'when' opcode {when_opcode} at offset {start}", start)
            self._module(module_id, aux=True)
            self._module_values()
        elif t == 0xF4:  # slot id, keys in slot, expires in slot
            r.length()
            r.length()
            r.length()
        elif t == 0xF3:  # Valkey slot import: job name, ranges
            r.skip_string()
            for _ in range(r.count(2)):
                r.length()
                r.length()

    def walk(self) -> int:
        """Walk records to EOF; returns the offset of the EOF opcode."""
        r = self.r
        types, opcodes = self.types, self.opcodes
        blob = _BLOB_TYPES
        opcode_counts = self.opcode_counts
        db = 0
        counts = self.db_counts.setdefault(0, [0] * 32)
        keys = 0
        expire = False
        rec = r.offset
        t = -1
        blob_mask = bytes(1 if code in blob else 0 for code in range(256))
        try:
            while True:
                if not expire:
                    n, e = r.simple_records(blob_mask, counts, opcode_counts)
                    keys += n
                    self.expires += e
                rec = r.base + r.pos
                t = -1
                t = r.byte()
                if t in blob:
                    r.skip_strings(2)
                elif t in opcodes:
                    opcode_counts[t] += 1
                    if t == 0xFF:
                        return rec
                    if t == 0xFC:
                        r.skip(8)
                        expire = True
                    elif t == 0xFD:
                        r.skip(4)
                        expire = True
                    elif t == 0xFE:
                        db = r.length()
                        counts = self.db_counts.setdefault(db, [0] * 32)
                    else:
                        self._opcode(t, db)
                    continue
                elif t in types:
                    r.skip_strings(1)
                    if t == 6:  # count the key before stopping on it
                        counts[t] += 1
                        keys += 1
                    self._value(t)
                else:
                    if self.newer:
                        raise _Stop(
                            f"type/opcode {t} at offset {rec} is not known for "
                            f"{self.header.magic} RDB version {self.header.version} (newer than this scanner)"
                        )
                    raise RdbFormatError(
                        f"unknown RDB type or opcode {t} (0x{t:02x}) at offset {rec} for "
                        f"{self.header.magic} RDB version {self.header.version}",
                        rec,
                    )
                counts[t] += 1
                keys += 1
                if expire:
                    self.expires += 1
                    expire = False
        except _Eof as exc:
            what = self._describe(t)
            raise RdbFormatError(
                f"truncated at offset {r.size}: the file ends inside {what} that starts at offset {rec} "
                f"({exc.needed} more bytes needed; {keys} keys read) - the file is truncated or corrupt",
                r.size,
            ) from None
        except RdbFormatError as exc:
            if exc.offset is None:
                exc.offset = rec
            raise

    def _describe(self, t: int) -> str:
        if t < 0:
            return "the next record (no EOF opcode yet)"
        if t in self.opcodes:
            return f"opcode {_OPCODES.get(t, t)} (0x{t:02x})"
        if t in self.types:
            return f"a key of RDB type {self.types[t][0]} ({t})"
        return f"a record of unknown type {t}"


def scan_rdb(path: PathLike, *, chunk_size: int = _DEFAULT_CHUNK) -> RdbSummary:
    """Walk an RDB file's whole structure without loading it, and check its CRC.

    Reads the file once, sequentially, through a buffer of about ``chunk_size`` bytes; values are skipped by
    their length prefixes (never decompressed or decoded), so memory stays bounded for any file size.

    Args:
        path: the RDB file (Redis RDB 1-12, Valkey ``VALKEY080``).
        chunk_size: read size in bytes.

    Returns:
        Aux fields, key counts per database and type, expires, functions, module types, and the stored and
        computed checksums. A mismatching checksum is reported as ``checksum_ok=False``, not raised: the
        caller decides. Module values of the pre-4.0 format, and types newer than this code knows in a newer
        format version, end the walk with ``complete=False`` and a ``stop_reason``.

    Raises:
        RdbFormatError: not an RDB, truncated, or an unknown type/opcode in a version this code knows
            (message and ``offset`` say where).
        OSError: if the file cannot be read.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header = read_header(f.read(512))  # raises a descriptive error for non-RDB input
        f.seek(9)
        r = _Reader(f, size, chunk_size)
        r.base, r.crc = 9, _crc(header.raw)
        walker = _Walker(r, header)
        summary = RdbSummary(
            header=header, size=size, aux=walker.aux, dbs={}, key_types={}, expires=0,
            module_types=walker.module_types, functions=0, stored_checksum=0, computed_checksum=0,
            checksum_ok=None, resize_hints=walker.resize_hints, notes=walker.notes,
        )  # fmt: skip
        has_crc = header.version >= 5
        try:
            eof_offset = walker.walk()
        except _Stop as stop:
            summary.complete = False
            summary.stop_reason = str(stop)
            if has_crc and size >= 18 and size - 8 >= r.base:  # CRC the rest as verify_checksum does
                summary.computed_checksum = r.crc_through(size - 8)
                f.seek(size - 8)
                summary.stored_checksum = int.from_bytes(f.read(8), "little")
        else:
            summary.eof_offset = eof_offset
            end = eof_offset + 1
            summary.computed_checksum = r.crc_through(end)
            if has_crc:
                try:
                    summary.stored_checksum = int.from_bytes(r.take(8), "little")
                except _Eof:
                    raise RdbFormatError(
                        f"truncated at offset {size}: the 8-byte checksum after the EOF opcode at offset "
                        f"{eof_offset} is missing or incomplete",
                        size,
                    ) from None
                end += 8
            summary.trailing_bytes = size - end
            if summary.trailing_bytes:
                summary.notes.append(
                    f"{summary.trailing_bytes} bytes follow the RDB at offset {end} (an AOF tail?): "
                    "ElastiCache expects a plain .rdb"
                )

    if has_crc and summary.stored_checksum:
        summary.checksum_ok = summary.stored_checksum == summary.computed_checksum
    types = walker.types
    for db, counts in sorted(walker.db_counts.items()):
        per_type: dict[str, int] = {}
        for t, n in enumerate(counts):
            if n:
                name, logical = types[t]
                per_type[logical] = per_type.get(logical, 0) + n
                summary.encodings[name] = summary.encodings.get(name, 0) + n
                summary.key_types[logical] = summary.key_types.get(logical, 0) + n
        total = sum(counts)
        if total or db in walker.resize_hints:
            summary.dbs[db] = total
            summary.db_key_types[db] = per_type
    summary.expires = walker.expires
    summary.functions = walker.functions
    summary.opcodes = {_OPCODES[t]: n for t, n in enumerate(walker.opcode_counts) if n}
    if walker.newer and summary.complete:
        summary.notes.append(
            f"{header.magic} RDB version {header.version} is newer than this scanner knows "
            f"(REDIS {KNOWN_REDIS_VERSION}, VALKEY {KNOWN_VALKEY_VERSION}); the walk found only known records"
        )
    return summary


def verify_checksum(path: PathLike, *, chunk_size: int = 8 << 20) -> tuple[int, int]:
    """Stored and computed CRC-64 of a plain RDB file, streaming (anycrc: several GB/s).

    The computed CRC covers every byte except the last 8, which hold the stored one (little endian). A
    stored 0 means the file was saved with ``rdbchecksum no``. Use :func:`scan_rdb` for files with data
    after the checksum (AOF with an RDB preamble).

    Args:
        path: the RDB file.
        chunk_size: read size in bytes.

    Returns:
        ``(stored, computed)``.

    Raises:
        RdbFormatError: not an RDB, an RDB version without checksum (< 5), or too short to hold one.
        OSError: if the file cannot be read.
    """
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        header = read_header(f.read(512))
        if header.version < 5:
            raise RdbFormatError(f"RDB version {header.version} files carry no checksum", 5)
        if size < 18:
            raise RdbFormatError(f"truncated at offset {size}: too short for EOF opcode and checksum", size)
        f.seek(0)
        remaining = size - 8
        crc = 0
        buf = bytearray(min(chunk_size, max(remaining, 1)))
        view = memoryview(buf)
        while remaining:
            n = f.readinto(view[: min(len(buf), remaining)])
            if not n:
                raise RdbFormatError(f"file shrank while reading at offset {size - 8 - remaining}", None)
            crc = _crc(view[:n], crc)
            remaining -= n
        stored = int.from_bytes(f.read(8), "little")
    return stored, crc
