"""Cluster slots: the CRC16 key slot and hash tags, exactly as ``CLUSTER KEYSLOT`` computes them (cluster spec)."""

from __future__ import annotations

__all__ = ["SLOTS", "as_bytes", "hash_tag", "key_slot"]

SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def _crc16(data: bytes) -> int:
    """CRC16/XMODEM (poly 0x1021, init 0, no reflection): the CRC Redis Cluster hashes keys with."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def as_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)


def hash_tag(key: bytes | str) -> bytes | None:
    """The part of ``key`` Redis Cluster hashes instead of the whole key, or None when there is none.

    Redis's rule: the first ``{``, then the first ``}`` after it; the bytes between are the tag if there is at
    least one. ``foo{}{bar}`` therefore has no tag (the whole key is hashed) and ``foo{{bar}}`` has ``{bar``.
    """
    k = as_bytes(key)
    start = k.find(b"{")
    if start < 0:
        return None
    end = k.find(b"}", start + 1)
    if end <= start + 1:
        return None
    return k[start + 1:end]


def key_slot(key: bytes | str) -> int:
    """The cluster slot of ``key``: CRC16/XMODEM of its hash tag (or of the whole key) mod 16384.

    What ``CLUSTER KEYSLOT`` answers; a ``str`` is taken as UTF-8.
    """
    tag = hash_tag(key)
    return _crc16(tag if tag is not None else as_bytes(key)) % SLOTS
