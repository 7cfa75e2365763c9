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

Package map: `crc64` (the checksum), `header` (magic, version, what a non-RDB file looks like), `reader`
(the buffered window, length and string encodings, LZF), `walker` (type and opcode tables, the record walk),
`scan` (:func:`scan_rdb`, :func:`verify_checksum`), `compat` (which engine loads which version).
"""

from __future__ import annotations

from elasticache_migrate.rdb.crc64 import Crc64Jones, crc64_jones
from elasticache_migrate.rdb.header import RdbFormatError, RdbHeader, read_header, read_header_file
from elasticache_migrate.rdb.scan import RdbSummary, scan_rdb, verify_checksum
from elasticache_migrate.rdb.walker import module_type_name

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
