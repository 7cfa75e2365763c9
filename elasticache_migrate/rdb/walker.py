"""The RDB grammar tables and the structure walk over them.

What the type and opcode bytes mean per magic (``src/rdb.h`` in Redis and Valkey): Redis 7.4+ (RDB 12) and
Valkey 9 (``VALKEY080``) share types 0-21 and opcodes 244-255; type 22 is a hash with field expiries in both
but laid out differently, Redis adds 23-25 and Valkey opcode 243 (``SLOT_IMPORT``). Module values carry
their module's 9-character type name packed in a 64-bit id (:func:`module_type_name`).

The walk skips every record by its length prefixes and counts keys by database and type; values are never
decoded (AUX fields are). `_Walker.walk` is the hot loop of :func:`elasticache_migrate.rdb.scan_rdb`: it
hands runs of simple keys to `_Reader.simple_records` and walks the rest record by record.
"""

from __future__ import annotations

from elasticache_migrate.rdb.header import RdbFormatError, RdbHeader
from elasticache_migrate.rdb.reader import _Eof, _Reader

__all__ = ["KNOWN_REDIS_VERSION", "KNOWN_VALKEY_VERSION", "module_type_name", "_OPCODES", "_Stop", "_Walker"]

# Newest format versions whose grammar this module knows completely.
KNOWN_REDIS_VERSION = 12
KNOWN_VALKEY_VERSION = 80

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
