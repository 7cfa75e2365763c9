"""Reading keys from one server for verify, over a bare RESP connection (:class:`RawConnection`): a batch of keys
in few pipelined round trips, digests of large sets and hashes, and large collections compared chunk by chunk.

A batch: MGET + a PTTL per key first (most keys are strings, and then they are done), then TYPE of the rest,
then the sizes and whole values of the collections. Collections larger than :data:`CHUNK` elements are never
read whole: they are compared in chunks (LRANGE / ZRANGE slices, SSCAN + SMISMEMBER, HSCAN + HMGET, XRANGE
pages) so no reply is ever huge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import hiredis
import redis

from elasticache_migrate.source.resp import RawConnection, ReplyError, pack_per_key
from elasticache_migrate.verify.compare import (
    NORMALISED_AS_READ,
    KeyState,
    as_text,
    brief,
    entries,
    groups,
    normalise,
    pairs,
    scored,
)

__all__ = [
    "CHUNK",
    "Batch",
    "read_batch",
    "key_state",
    "fetch_states",
    "set_digest",
    "chunks_equal",
    "keyspace_dbs",
    "batches",
    "scanned",
]

CHUNK = 1000  # collections with more elements are compared chunk by chunk
_SIZE_CMD = {"list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN", "stream": "XLEN"}
_TYPES = {b"string": "string", b"list": "list", b"set": "set", b"zset": "zset", b"hash": "hash",
          b"stream": "stream", b"none": "none"}


def _small_reads(t: str, key: bytes) -> list[tuple[Any, ...]]:
    """The commands that read a whole (small) collection."""
    if t == "list":
        return [("LRANGE", key, 0, -1)]
    if t == "set":
        return [("SMEMBERS", key)]
    if t == "zset":
        return [("ZRANGE", key, 0, -1, "WITHSCORES")]
    if t == "hash":
        return [("HGETALL", key)]
    if t == "stream":
        return [("XRANGE", key, "-", "+"), ("XINFO", "GROUPS", key)]
    return [("DUMP", key)]  # module or unknown type: compare the serialized form


class Batch(NamedTuple):
    """A batch of keys as read from one server, in parallel lists of raw replies (normalised only when needed).

    ``values[i]`` is the value of a string, a small set or hash as a frozenset or dict, the raw reply of
    another small collection (a tuple of two replies for a stream), or None for a large collection (compared
    in chunks) and a missing key.
    """

    types: list[str]
    values: list[Any]
    ttls: list[Any]
    sizes: list[int]


def read_batch(r: RawConnection, keys: list[bytes]) -> Batch:
    """Values, PTTLs and types of ``keys`` in few round trips: MGET + PTTLs (strings are done), then TYPE of
    the rest, then the sizes and whole values of the collections."""
    n = len(keys)
    mget: tuple[Any, ...] = ("MGET", *keys)
    head = r.run_packed(hiredis.pack_command(mget) + pack_per_key(b"PTTL", keys), n + 1)
    values = list(head[0]) if isinstance(head[0], list) else [None] * n
    ttls = head[1:]
    types = ["string"] * n
    sizes = [0] * n
    unknown = [i for i, v in enumerate(values) if v is None]
    if not unknown:
        return Batch(types, values, ttls, sizes)
    raw_types = r.run_packed(pack_per_key(b"TYPE", [keys[i] for i in unknown]), len(unknown))
    later: list[int] = []
    for i, raw_type in zip(unknown, raw_types, strict=True):
        t = _TYPES.get(raw_type) or as_text(raw_type)
        types[i] = t
        if t != "none":
            later.append(i)
    if later:
        lens = r.run([(_SIZE_CMD[types[i]], keys[i]) if types[i] in _SIZE_CMD else ("EXISTS", keys[i])
                      for i in later])
        reads = [_small_reads(types[i], keys[i]) if isinstance(size, int) and size <= CHUNK else []
                 for i, size in zip(later, lens, strict=True)]
        replies = r.run([c for rs in reads for c in rs])
        j = 0
        for i, size, rs in zip(later, lens, reads, strict=True):
            raw = replies[j:j + len(rs)]
            j += len(rs)
            sizes[i] = size if isinstance(size, int) else 0
            if rs and any(isinstance(x, ReplyError) for x in raw):
                types[i], ttls[i] = "none", -2  # vanished (expired) between the round trips
            elif not rs:
                pass  # a large collection: compared in chunks
            elif types[i] in NORMALISED_AS_READ:
                values[i] = normalise(types[i], raw)  # members come in hash-table order, which differs by server
            else:
                values[i] = raw[0] if len(raw) == 1 else tuple(raw)
    return Batch(types, values, ttls, sizes)


def key_state(b: Batch, i: int) -> KeyState:
    """One key of a batch as a KeyState, its value normalised (comparable across servers and encodings)."""
    t, v, ttl = b.types[i], b.values[i], b.ttls[i]
    if t == "none":
        return KeyState("none", None, -2)
    if v is not None and t != "string" and t not in NORMALISED_AS_READ:
        v = normalise(t, list(v) if isinstance(v, tuple) else [v])
    return KeyState(t, v, ttl if isinstance(ttl, int) else -2, b.sizes[i])


def fetch_states(r: RawConnection, keys: list[bytes]) -> list[KeyState]:
    """Type, normalised value and PTTL of each key (see :func:`read_batch`)."""
    b = read_batch(r, keys)
    return [key_state(b, i) for i in range(len(keys))]


def set_digest(r: RawConnection, key: bytes, t: str) -> tuple[int, int]:
    """(elements, order-independent digest) of a set or hash, read in SSCAN/HSCAN pages of ~CHUNK.

    The digest is the sum of the elements' hashes mod 2**64 (Python's hash of bytes: the same for both
    servers within this process). A SCAN may return an element twice, so equal digests prove equality while
    different ones only send the key to the exact comparison.
    """
    scan = "SSCAN" if t == "set" else "HSCAN"
    cursor: Any = 0
    count = total = 0
    while True:
        cursor, items = r.run([(scan, key, cursor, "COUNT", CHUNK)])[0]
        if t == "set":
            count += len(items)
            total += sum(map(hash, items))
        else:
            count += len(items) // 2
            total += sum(map(hash, zip(items[::2], items[1::2], strict=True)))
        total &= 0xFFFF_FFFF_FFFF_FFFF
        if int(cursor) == 0:
            return count, total


def chunks_equal(src: RawConnection, tgt: RawConnection, key: bytes, t: str, size: int,
                 smismember: bool = True, pool: ThreadPoolExecutor | None = None) -> str | None:
    """Compare a large collection chunk by chunk; a description of the first difference, or None.

    With ``pool`` (a thread that may use ``src``) the source's chunk is read while the target's is.
    """

    def both(cmd: tuple[Any, ...]) -> tuple[Any, Any]:
        if pool is None:
            return src.run([cmd])[0], tgt.run([cmd])[0]
        fut = pool.submit(src.run, [cmd])
        b = tgt.run([cmd])[0]
        return fut.result()[0], b

    if t in ("list", "zset"):
        for start in range(0, size, CHUNK):
            end = start + CHUNK - 1
            cmd: tuple[Any, ...] = ("LRANGE", key, start, end) if t == "list" else (
                "ZRANGE", key, start, end, "WITHSCORES")
            a, b = both(cmd)
            if a != b and t == "zset":  # scores may be printed differently by another version
                a, b = scored(a), scored(b)
            if a != b:
                return f"{t} differs within elements {start}..{end}"
        return None
    if t in ("set", "hash"):
        if pool is not None:
            fut = pool.submit(set_digest, src, key, t)
            if set_digest(tgt, key, t) == fut.result():
                return None
        scan = "SSCAN" if t == "set" else "HSCAN"
        cursor: Any = 0
        while True:
            cursor, items = src.run([(scan, key, cursor, "COUNT", CHUNK)])[0]
            if t == "set" and items:
                if smismember:
                    present = tgt.run([("SMISMEMBER", key, *items)])[0]
                else:
                    present = tgt.run([("SISMEMBER", key, m) for m in items])
                missing = [m for m, on in zip(items, present, strict=True) if not on]
                if missing:
                    return f"set members missing on target, e.g. {brief(missing[:3])}"
            elif items:
                fields = pairs(items)
                theirs = tgt.run([("HMGET", key, *[f for f, _v in fields])])[0]
                diff = [f for (f, v), w in zip(fields, theirs, strict=True) if v != w]
                if diff:
                    return f"hash fields differ, e.g. {brief(diff[:3])}"
            if int(cursor) == 0:
                return None
    if t == "stream":
        last: Any = "-"
        while True:
            a, b = both(("XRANGE", key, last, "+", "COUNT", CHUNK))
            a, b = entries(a), entries(b)
            if a != b:
                return f"stream entries differ after {as_text(last)}"
            if len(a) < CHUNK:
                break
            ms, seq = as_text(a[-1][0]).split("-")
            last = f"{ms}-{int(seq) + 1}"
        ga, gb = both(("XINFO", "GROUPS", key))
        ga, gb = groups(ga), groups(gb)
        return None if ga == gb else f"consumer groups differ: {brief(ga)} != {brief(gb)}"
    return None


def keyspace_dbs(r: redis.Redis) -> dict[int, int]:
    """db number -> key count, from INFO keyspace."""
    out = {}
    for name, v in r.info("keyspace").items():
        if str(name).startswith("db"):
            out[int(str(name)[2:])] = int(v["keys"]) if isinstance(v, dict) else int(str(v).split(",")[0][5:])
    return out


def batches(it: Iterable[bytes], n: int) -> Iterator[list[bytes]]:
    """The items of ``it`` in lists of ``n`` (the last one shorter)."""
    buf: list[bytes] = []
    for k in it:
        buf.append(k)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def scanned(r: RawConnection, n: int) -> Iterator[list[bytes]]:
    """Every key of the connection's db, by SCAN, in batches of ``n``."""
    cursor: Any = b"0"
    buf: list[bytes] = []
    while True:
        cursor, keys = r.run([("SCAN", cursor, "COUNT", n)])[0]
        buf.extend(keys)
        while len(buf) >= n:
            yield buf[:n]
            del buf[:n]
        if cursor in (b"0", 0, "0"):
            break
    if buf:
        yield buf
