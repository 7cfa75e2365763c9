"""Scan a whole RDB file (:func:`scan_rdb`) or only check its trailing CRC-64 (:func:`verify_checksum`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from elasticache_migrate.rdb import crc64
from elasticache_migrate.rdb.header import PathLike, RdbFormatError, RdbHeader, read_header
from elasticache_migrate.rdb.reader import _Eof, _Reader
from elasticache_migrate.rdb.walker import _OPCODES, KNOWN_REDIS_VERSION, KNOWN_VALKEY_VERSION, _Stop, _Walker

__all__ = ["RdbSummary", "scan_rdb", "verify_checksum"]

_DEFAULT_CHUNK = 1 << 20


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
        r.base, r.crc = 9, crc64._crc(header.raw)
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
            crc = crc64._crc(view[:n], crc)
            remaining -= n
        stored = int.from_bytes(f.read(8), "little")
    return stored, crc
