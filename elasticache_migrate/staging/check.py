"""The RDB stream check: header, SHA-256 and CRC-64 of the bytes as they go by, whatever their source.

Every path feeds its chunks through one :class:`RdbStreamCheck` (see :mod:`elasticache_migrate.staging.sink`): a
stream that does not start with an RDB's header is refused after its first bytes, and the result is refused when
the RDB's own trailing CRC-64 does not match.
"""

from __future__ import annotations

import hashlib

from elasticache_migrate.errors import ExtractError
from elasticache_migrate.rdb import Crc64Jones, RdbFormatError, RdbHeader, read_header
from elasticache_migrate.state import Extracted

__all__ = ["Chunk", "RdbStreamCheck", "checksum_word"]

Chunk = bytes | bytearray | memoryview


def checksum_word(ok: bool | None) -> str:
    """How the CRC-64 came out, for a log line."""
    return {True: "ok", None: "absent (rdbchecksum no)", False: "BAD"}[ok]


class RdbStreamCheck:
    """Checks an RDB as its bytes go by: the header once its first bytes are in, SHA-256, and the CRC-64 over all
    but the trailing 8 bytes (the RDB's own checksum), so the last 8 bytes seen are held back from the running CRC.

    Blocks may be any bytes-like object of any length (a replication stream's first piece can be a few bytes);
    nothing but the header's 512 bytes and the 8-byte tail is copied.
    """

    HEAD = 512  # bytes kept for the header and, for a non-RDB, a description of what it is instead

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.header: RdbHeader | None = None
        self.size = 0
        self._sha = hashlib.sha256()
        self._crc = Crc64Jones()
        self._tail = b""
        self._head = b""

    def feed(self, block: Chunk) -> None:
        """Account for the next block.

        Raises:
            ExtractError: the stream does not start with an RDB's header.
        """
        if self.header is None and len(self._head) < self.HEAD:
            self._head += bytes(block[:self.HEAD - len(self._head)])
            if len(self._head) >= self.HEAD or (len(self._head) >= 9 and self._head[:5] in (b"REDIS", b"VALKE")):
                self._read_header()
        self._sha.update(block)
        self.size += len(block)
        if len(block) >= 8:
            self._crc.update(self._tail)  # no longer the last 8 bytes
            self._crc.update(memoryview(block)[:-8])
            self._tail = bytes(block[-8:])
        else:
            data = self._tail + bytes(block)
            self._crc.update(data[:-8])
            self._tail = data[-8:]

    def _read_header(self) -> None:
        try:
            self.header = read_header(self._head)
        except RdbFormatError as exc:
            raise ExtractError(f"{self.origin} is not an RDB file: {exc}",
                               remedy="point source.rdb_path (or the server's dir/dbfilename) at the dump.rdb "
                               "Redis writes", step="extract") from exc

    def result(self, path: str) -> Extracted:
        """What was read, as an Extracted at ``path``.

        Raises:
            ExtractError: nothing was read, not an RDB, or the bytes do not match the RDB's own CRC-64.
        """
        if self.header is None and self._head:
            self._read_header()  # a stream shorter than the header's 512 bytes
        if self.header is None:
            raise ExtractError(f"{self.origin} is empty", remedy="check that BGSAVE wrote the file", step="extract")
        ex = Extracted(path=path, size=self.size, sha256=self._sha.hexdigest(),
                       crc64_stored=int.from_bytes(self._tail, "little") if len(self._tail) == 8 else 0,
                       crc64_computed=self._crc.digest(), rdb_version=self.header.version, magic=self.header.magic,
                       origin=self.origin)
        if ex.checksum_ok is False:
            raise ExtractError(f"{self.origin}: the copy does not match the RDB's own CRC-64 "
                               f"(stored {ex.crc64_stored:#018x}, computed {ex.crc64_computed:#018x})",
                               remedy="the file is corrupt or was being written; re-run to snapshot again",
                               step="extract", retryable=True)
        return ex
