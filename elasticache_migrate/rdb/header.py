"""The 9-byte RDB header (``REDIS0011``, ``VALKEY080``) and the error every RDB reader here raises.

A file that is not an RDB gets a guess at what it is instead (gzip, tar, an AOF, a replication payload with
its ``$<length>`` line, an S3 error page, ...), so the error message says what to do about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["PathLike", "RdbFormatError", "RdbHeader", "read_header", "read_header_file"]

PathLike = str | os.PathLike[str]


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
