"""The bounded, buffered window the walker reads an RDB through: lengths, strings, skips, LZF.

Every byte that leaves the window goes through the running CRC (``crc64._crc``), so one sequential read
both walks the structure and checksums the file. The skip loops (`_Reader.skip_strings`,
`_Reader.simple_records`) are the hot paths of :func:`elasticache_migrate.rdb.scan_rdb`: they work on locals
and must stay as they are.
"""

from __future__ import annotations

from typing import IO

from elasticache_migrate.rdb import crc64
from elasticache_migrate.rdb.header import RdbFormatError

__all__ = ["_Eof", "_Reader"]  # package-internal: the window scan_rdb and the walker read through


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
            self.crc = crc64._crc(memoryview(buf)[:pos], self.crc)
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
        self.crc = crc64._crc(buf, self.crc)
        self.base += len(buf)
        n = pos - len(buf)
        self.buf, self.pos = b"", 0
        while n >= self.chunk:
            data = self.f.read(self.chunk)
            if not data:
                raise _Eof(n)
            self.crc = crc64._crc(data, self.crc)
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
            return crc64._crc(memoryview(self.buf)[: upto - self.base], self.crc)
        crc = crc64._crc(self.buf, self.crc)
        off = end
        while off < upto:
            data = self.f.read(min(max(self.chunk, 1 << 20), upto - off))
            if not data:
                break
            crc = crc64._crc(data, crc)
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
