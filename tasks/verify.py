"""verify: the target holds exactly what the (still paused) source holds.

Per-db key counts first; then every key of the source is compared with the target by type, value and
TTL (within a tolerance). Both servers are read at the same time (one thread each), a batch of keys per
pipelined round trip: TYPE + PTTL + GET in the first (most keys are strings), the collections in a
second. Collections larger than ``CHUNK`` elements are compared in chunks (LRANGE / ZRANGE slices,
SSCAN + SMISMEMBER, HSCAN + HMGET, XRANGE pages) so no reply is ever huge. Keys the target has that the
source does not are looked for whenever the target holds more keys than matched.

For very large keyspaces ``verify.sample_keys`` compares a random sample and states the confidence it
gives; ``verify.probes`` names keys or patterns the app cannot live without; and the source is checked
to be unchanged since the snapshot (no write reached it: nothing can be lost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import hiredis
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from elasticache_migrate.errors import SourceError, VerificationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.rdb.compat import parse_version
from elasticache_migrate.source.connection import Endpoint, redis_errors, source_client, target_client
from elasticache_migrate.source.resp import RawConnection, ReplyError, pack_per_key, raw_like
from tasks.log import run_logger
from tasks.retry import IO_RETRIES

__all__ = [
    "CHUNK",
    "KeyState",
    "Mismatch",
    "VerifyReport",
    "compare_key",
    "fetch_states",
    "compare_db",
    "keyspace_dbs",
    "sample_confidence",
    "verify_endpoints",
    "source_unchanged",
    "report_markdown",
    "verify",
    "verify_cutover",
]

CHUNK = 1000  # collections with more elements are compared chunk by chunk
_SIZE_CMD = {"list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN", "stream": "XLEN"}


class KeyState(NamedTuple):
    """A key as read from one server: type, normalised value, PTTL (-1 none, -2 absent).

    ``value`` is None for a collection too large to hold (compared in chunks) — then ``size`` says how big.
    """

    type: str
    value: Any
    pttl: int
    size: int = 0


@dataclass(frozen=True)
class Mismatch:
    """One difference between source and target."""

    db: int
    key: str
    kind: str        # missing | type | value | ttl | extra | probe | source-changed
    detail: str


@dataclass
class VerifyReport:
    """What verify found."""

    dbs: dict[int, tuple[int, int]] = field(default_factory=dict)   # db -> (source keys, target keys)
    keys_checked: int = 0
    expired_during: int = 0
    mismatch_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    sampled: bool = False
    confidence: str = ""
    probes: list[str] = field(default_factory=list)
    source_state: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0

    @property
    def keys_per_second(self) -> float:
        return self.keys_checked / self.seconds if self.seconds else 0.0

    def add(self, m: Mismatch, limit: int) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < limit:
            self.mismatches.append(m)


def _show(key: bytes) -> str:
    s = key.decode("utf-8", "backslashreplace")
    return s if len(s) <= 80 else s[:77] + "..."


def _brief(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def compare_key(db: int, key: bytes, src: KeyState, tgt: KeyState, tolerance_ms: int) -> Mismatch | None:
    """The difference between one key's states on source and target, or None if they agree.

    A key that expires on one side while verify runs (TTL within the tolerance) is not a difference.
    Values of chunked collections (``value`` None) are compared separately; here only their sizes.
    """
    name = _show(key)
    if src.type == "none":
        return None if tgt.type == "none" or 0 <= tgt.pttl <= tolerance_ms else Mismatch(
            db, name, "extra", f"on target only ({tgt.type})")
    if tgt.type == "none":
        if 0 <= src.pttl <= tolerance_ms:
            return None  # expired on the target a moment earlier
        return Mismatch(db, name, "missing", f"{src.type} missing on target")
    if src.type != tgt.type:
        return Mismatch(db, name, "type", f"source {src.type}, target {tgt.type}")
    if src.size != tgt.size:
        return Mismatch(db, name, "value", f"{src.type} of {src.size} elements on source, {tgt.size} on target")
    if src.value != tgt.value:
        return Mismatch(db, name, "value", f"source {_brief(src.value)} != target {_brief(tgt.value)}")
    if (src.pttl < 0) != (tgt.pttl < 0):
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl}, target PTTL {tgt.pttl}")
    if src.pttl >= 0 and abs(src.pttl - tgt.pttl) > tolerance_ms:
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl} ms, target {tgt.pttl} ms (> {tolerance_ms} ms)")
    return None


# ---------------------------------------------------------------------------------------------------- reading

def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


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


def _pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=False))


def _groups(raw: Any) -> list[tuple[Any, ...]]:
    """Consumer groups of a stream, comparable across versions (name, consumers, pending, last id)."""
    out = []
    for g in raw or []:
        d = {_text(k): v for k, v in (_pairs(g) if isinstance(g, list) else dict(g).items())}
        out.append((d.get("name"), d.get("consumers"), d.get("pending"), d.get("last-delivered-id")))
    return sorted(out, key=repr)


def _entries(raw: Any) -> list[tuple[Any, Any]]:
    """Stream entries as (id, sorted field pairs)."""
    return [(eid, tuple(sorted(_pairs(fields) if isinstance(fields, list) else fields.items())))
            for eid, fields in raw or []]


def _scored(flat: list[Any]) -> list[tuple[Any, float]]:
    """A WITHSCORES reply as (member, score) pairs: scores compared as numbers, however a version prints them."""
    return [(m, float(sc)) for m, sc in _pairs(flat)]


_NORMALISED_AS_READ = frozenset({"set", "hash"})  # by _read_batch; the other types only when they differ as read


def _normalise(t: str, raw: list[Any]) -> Any:
    """Make a fetched value comparable across servers and encodings."""
    if t == "set":
        return frozenset(raw[0])
    if t == "zset":
        return _scored(raw[0])
    if t == "hash":
        return dict(_pairs(raw[0]))
    if t == "stream":
        return (_entries(raw[0]), _groups(raw[1]))
    return raw[0]


_TYPES = {b"string": "string", b"list": "list", b"set": "set", b"zset": "zset", b"hash": "hash",
          b"stream": "stream", b"none": "none"}


class _Batch(NamedTuple):
    """A batch of keys as read from one server, in parallel lists of raw replies (normalised only when needed).

    ``values[i]`` is the value of a string, a small set or hash as a frozenset or dict, the raw reply of
    another small collection (a tuple of two replies for a stream), or None for a large collection (compared
    in chunks) and a missing key.
    """

    types: list[str]
    values: list[Any]
    ttls: list[Any]
    sizes: list[int]


def _read_batch(r: RawConnection, keys: list[bytes]) -> _Batch:
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
        return _Batch(types, values, ttls, sizes)
    raw_types = r.run_packed(pack_per_key(b"TYPE", [keys[i] for i in unknown]), len(unknown))
    later: list[int] = []
    for i, raw_type in zip(unknown, raw_types, strict=True):
        t = _TYPES.get(raw_type) or _text(raw_type)
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
            elif types[i] in _NORMALISED_AS_READ:
                values[i] = _normalise(types[i], raw)  # members come in hash-table order, which differs by server
            else:
                values[i] = raw[0] if len(raw) == 1 else tuple(raw)
    return _Batch(types, values, ttls, sizes)


def _state(b: _Batch, i: int) -> KeyState:
    """One key of a batch as a KeyState, its value normalised (comparable across servers and encodings)."""
    t, v, ttl = b.types[i], b.values[i], b.ttls[i]
    if t == "none":
        return KeyState("none", None, -2)
    if v is not None and t != "string" and t not in _NORMALISED_AS_READ:
        v = _normalise(t, list(v) if isinstance(v, tuple) else [v])
    return KeyState(t, v, ttl if isinstance(ttl, int) else -2, b.sizes[i])


def fetch_states(r: RawConnection, keys: list[bytes]) -> list[KeyState]:
    """Type, normalised value and PTTL of each key (see :func:`_read_batch`)."""
    b = _read_batch(r, keys)
    return [_state(b, i) for i in range(len(keys))]


def _set_digest(r: RawConnection, key: bytes, t: str) -> tuple[int, int]:
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


def _chunks_equal(src: RawConnection, tgt: RawConnection, key: bytes, t: str, size: int,
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
                a, b = _scored(a), _scored(b)
            if a != b:
                return f"{t} differs within elements {start}..{end}"
        return None
    if t in ("set", "hash"):
        if pool is not None:
            fut = pool.submit(_set_digest, src, key, t)
            if _set_digest(tgt, key, t) == fut.result():
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
                    return f"set members missing on target, e.g. {_brief(missing[:3])}"
            elif items:
                pairs = _pairs(items)
                theirs = tgt.run([("HMGET", key, *[f for f, _v in pairs])])[0]
                diff = [f for (f, v), w in zip(pairs, theirs, strict=True) if v != w]
                if diff:
                    return f"hash fields differ, e.g. {_brief(diff[:3])}"
            if int(cursor) == 0:
                return None
    if t == "stream":
        last: Any = "-"
        while True:
            a, b = both(("XRANGE", key, last, "+", "COUNT", CHUNK))
            a, b = _entries(a), _entries(b)
            if a != b:
                return f"stream entries differ after {_text(last)}"
            if len(a) < CHUNK:
                break
            ms, seq = _text(a[-1][0]).split("-")
            last = f"{ms}-{int(seq) + 1}"
        ga, gb = both(("XINFO", "GROUPS", key))
        ga, gb = _groups(ga), _groups(gb)
        return None if ga == gb else f"consumer groups differ: {_brief(ga)} != {_brief(gb)}"
    return None


def keyspace_dbs(r: Any) -> dict[int, int]:
    """db number -> key count, from INFO keyspace."""
    out = {}
    for name, v in r.info("keyspace").items():
        if str(name).startswith("db"):
            out[int(str(name)[2:])] = int(v["keys"]) if isinstance(v, dict) else int(str(v).split(",")[0][5:])
    return out


def _batches(it: Any, n: int) -> Iterator[list[bytes]]:
    buf: list[bytes] = []
    for k in it:
        buf.append(k)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _scanned(r: RawConnection, n: int) -> Iterator[list[bytes]]:
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


def _sample_keys(r: Any, n: int) -> Iterator[list[bytes]]:
    """About ``n`` distinct keys drawn with RANDOMKEY, in batches (reads only: allowed while paused)."""
    seen: set[bytes] = set()
    tries = 0
    while len(seen) < n and tries < 3 * n:
        p = r.pipeline(transaction=False)
        want = min(1000, 3 * n - tries)
        for _ in range(want):
            p.randomkey()
        tries += want
        fresh = [k for k in dict.fromkeys(p.execute()) if k is not None and k not in seen][: n - len(seen)]
        seen.update(fresh)
        if fresh:
            yield fresh


def sample_confidence(sampled: int, total: int, mismatches: int) -> str:
    """What a clean random sample says about the whole keyspace (the 'rule of three', 95 %)."""
    if mismatches:
        return f"{mismatches} of {sampled} sampled keys differ: the target is NOT a faithful copy"
    if sampled >= total:
        return f"all {total} keys compared"
    bound = 3.0 / sampled if sampled else 1.0
    return (f"{sampled} of {total} keys sampled at random, none differs: with 95 % confidence fewer than "
            f"{bound:.3%} of keys (≈{math.ceil(bound * total):,}) differ; counts per db match exactly")


def compare_db(src: Any, tgt: Any, db: int, opts: Any, report: VerifyReport,
               pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor], sample: int = 0) -> None:
    """Compare one db (redis-py clients SELECTed on it): every key, or a random sample of ``sample`` keys."""
    batch = opts.batch_size
    on_both = 0
    raw_src, raw_tgt = raw_like(src), raw_like(tgt)      # read by the two reader threads only
    big_src, big_tgt = raw_like(src), raw_like(tgt)      # chunked comparisons, from this thread
    scan_src = raw_like(src)                             # SCAN, from this thread
    smismember = parse_version(str(tgt.info("server").get("redis_version", "0"))) >= (6, 2)
    try:
        keys_iter = _sample_keys(src, sample) if sample else _scanned(scan_src, batch)
        tol = opts.ttl_tolerance_ms
        for keys, a, b in _prefetched(keys_iter, pools, raw_src, raw_tgt):
            n = len(keys)
            if a.types == b.types and a.sizes == b.sizes:
                # the common case, decided mostly in C: only values that differ as read (e.g. a set's members in
                # another order), TTLs that differ, large collections and vanished keys are looked at one by one
                av, bv = a.values, b.values
                look = ({i for i, v in enumerate(av) if v is None} if av == bv else
                        {i for i, x, y in zip(range(n), av, bv, strict=True) if x is None or x != y})
                if a.ttls != b.ttls:
                    look.update(i for i, x, y in zip(range(n), a.ttls, b.ttls, strict=True)
                                if x != y and not (isinstance(x, int) and isinstance(y, int) and x >= 0 and y >= 0
                                                   and -tol <= x - y <= tol))
                report.keys_checked += n - len(look)
                on_both += n - len(look)
                todo: Any = sorted(look)
            else:
                todo = range(n)
            for i in todo:
                s, t = _state(a, i), _state(b, i)
                if s.type == "none":
                    continue  # expired on the source between SCAN and TYPE
                report.keys_checked += 1
                on_both += t.type != "none"
                k = keys[i]
                m = compare_key(db, k, s, t, tol)
                if m is None and s.value is None and t.type == s.type:
                    diff = _chunks_equal(big_src, big_tgt, k, s.type, s.size, smismember, pools[0])
                    m = Mismatch(db, _show(k), "value", diff) if diff else None
                if m is not None:
                    report.add(m, opts.max_reported_mismatches)
                elif t.type == "none":
                    report.expired_during += 1
    finally:
        for c in (raw_src, raw_tgt, big_src, big_tgt, scan_src):
            c.close()
    src_n, tgt_n = src.dbsize(), tgt.dbsize()
    report.dbs[db] = (src_n, tgt_n)
    if sample:
        if abs(src_n - tgt_n) > report.expired_during:
            report.add(Mismatch(db, "*", "value", f"source has {src_n} keys, target {tgt_n}"),
                       opts.max_reported_mismatches)
        return
    if tgt_n > on_both:  # the target holds keys the source's SCAN did not bring: find them
        for keys in _batches(tgt.scan_iter(count=batch), batch):
            p = src.pipeline(transaction=False)
            for k in keys:
                p.exists(k)
            for k, present in zip(keys, p.execute(), strict=True):
                if not present:
                    report.add(Mismatch(db, _show(k), "extra", "on target only"), opts.max_reported_mismatches)


def _prefetched(keys_iter: Any, pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor], src: RawConnection,
                tgt: RawConnection) -> Iterator[tuple[list[bytes], _Batch, _Batch]]:
    """Batches with both servers' states, the next batch already being read while one is compared.

    One single-thread reader per server: each connection is used by one thread, in order.
    """
    pending = None
    for keys in keys_iter:
        nxt = (keys, pools[0].submit(_read_batch, src, keys), pools[1].submit(_read_batch, tgt, keys))
        if pending:
            yield pending[0], pending[1].result(), pending[2].result()
        pending = nxt
    if pending:
        yield pending[0], pending[1].result(), pending[2].result()


def _probe(src: Any, tgt: Any, probe: str, opts: Any) -> tuple[str, Mismatch | None]:
    """A key or glob pattern the app relies on: present on the target, and as on the source."""
    if any(c in probe for c in "*?["):
        a = sum(1 for _ in src.scan_iter(match=probe, count=1000))
        b = sum(1 for _ in tgt.scan_iter(match=probe, count=1000))
        line = f"`{probe}`: {a} keys on source, {b} on target"
        if b == 0 or abs(a - b) > 0:
            return line, Mismatch(0, probe, "probe", f"pattern {probe}: {a} keys on source, {b} on target")
        return line, None
    key = probe.encode()
    with raw_like(src) as rs, raw_like(tgt) as rt:
        s, t = fetch_states(rs, [key])[0], fetch_states(rt, [key])[0]
    if t.type == "none":
        return f"`{probe}`: missing on target", Mismatch(0, probe, "probe", "required key missing on target")
    m = compare_key(0, key, s, t, opts.ttl_tolerance_ms)
    return f"`{probe}`: present, {'equal' if m is None else 'DIFFERENT'}", m


def source_unchanged(r: Any, snapshot: Any | None) -> tuple[str, Mismatch | None]:
    """Proof that no write reached the source after the snapshot (so none can be lost by the cutover)."""
    info = r.info("persistence")
    changes = int(info.get("rdb_changes_since_last_save", 0))
    saves = info.get("rdb_saves")
    lastsave = int(info.get("rdb_last_save_time", 0))
    parts = [f"rdb_changes_since_last_save={changes}"]
    if saves is not None:
        parts.append(f"rdb_saves={saves}")
    parts.append(f"rdb_last_save_time={lastsave}")
    try:
        cfg = dict(r.config_get("min-*-to-write"))
        if any(_text(v) == "1000000" for v in cfg.values()):
            parts.append("writes refused (min-slaves-to-write)")
    except Exception:  # noqa: BLE001 - CONFIG renamed: the counters still speak
        pass
    text = ", ".join(parts)
    if snapshot is None:
        return text, None
    newer_save = lastsave != snapshot.last_save_time or (saves is not None and snapshot.rdb_saves is not None
                                                         and int(saves) != snapshot.rdb_saves)
    if changes > snapshot.changes_since_save or newer_save:
        return text, Mismatch(-1, "(source)", "source-changed",
                              f"the source changed after the snapshot ({text}): writes after it would be lost")
    return text, None


def verify_endpoints(plan: MigrationPlan, endpoint: Endpoint, snapshot: Any | None = None) -> VerifyReport:
    """Compare source and target (no Prefect context needed)."""
    t0 = time.monotonic()
    opts = plan.verify
    report = VerifyReport()
    with (redis_errors("verify", SourceError, "verify"), ThreadPoolExecutor(1, thread_name_prefix="read-source") as p1,
          ThreadPoolExecutor(1, thread_name_prefix="read-target") as p2):
        src0, tgt0 = source_client(plan), target_client(plan, endpoint)
        counts = keyspace_dbs(src0)
        dbs = sorted(set(counts) | set(keyspace_dbs(tgt0)))
        total = sum(counts.values())
        sample = opts.sample_keys if opts.sample_keys and total > opts.sample_keys else 0
        for db in dbs or [0]:
            share = max(1, round(sample * counts.get(db, 0) / total)) if sample else 0
            compare_db(source_client(plan, db=db), target_client(plan, endpoint, db=db), db, opts, report, (p1, p2),
                       sample=share)
        if sample:
            report.sampled = True
        report.confidence = sample_confidence(report.keys_checked, total, report.mismatch_count)
        for probe in opts.probes:
            line, m = _probe(src0, tgt0, probe, opts)
            report.probes.append(line)
            if m is not None:
                report.add(m, opts.max_reported_mismatches)
        report.source_state, m = source_unchanged(src0, snapshot)
        if m is not None:
            report.add(m, opts.max_reported_mismatches)
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def report_markdown(report: VerifyReport) -> str:
    """The verify result as markdown (for the artifact and stdout)."""
    lines = ["| db | source keys | target keys |", "|---:|---:|---:|"]
    lines += [f"| {db} | {s} | {t} |" for db, (s, t) in sorted(report.dbs.items())]
    verdict = "**all keys equal**" if report.ok else f"**{report.mismatch_count} mismatch(es)**"
    lines += ["", f"{report.keys_checked} keys compared by type, value and TTL in {report.seconds}s "
              f"({report.keys_per_second:,.0f} keys/s): {verdict} ({report.expired_during} expired while checking).",
              f"Coverage: {report.confidence}."]
    if report.probes:
        lines += ["", "Probes: " + "; ".join(report.probes)]
    if report.source_state:
        lines += ["", f"Source since the snapshot: {report.source_state}"]
    if report.mismatches:
        lines += ["", "| db | key | kind | detail |", "|---:|---|---|---|"]
        lines += [f"| {m.db} | `{m.key}` | {m.kind} | {m.detail.replace('|', '/')} |" for m in report.mismatches]
    return "\n".join(lines)


@task(name="verify", **IO_RETRIES)
def verify(plan: MigrationPlan, endpoint: Endpoint, snapshot: Any | None = None) -> VerifyReport:
    """Compare every key of the source with the target; publish a table artifact.

    Raises:
        VerificationError: counts or any key differ, a probe fails, or the source changed after the snapshot
            (the first mismatches are named).
    """
    log = run_logger()
    report = verify_endpoints(plan, endpoint, snapshot)
    rows = [{"db": db, "source keys": s, "target keys": t} for db, (s, t) in sorted(report.dbs.items())]
    create_table_artifact(key=f"verify-{plan.migration_id}", table=rows or [{"db": 0, "source keys": 0,
                          "target keys": 0}], description=f"Key counts, source vs target ({endpoint.url()})")
    create_markdown_artifact(key=f"verify-report-{plan.migration_id}", markdown=report_markdown(report),
                             description="Verify result")
    log.info("verify: %s keys compared in %ss (%.0f keys/s), %s mismatches; %s", report.keys_checked,
             report.seconds, report.keys_per_second, report.mismatch_count, report.confidence)
    if report.source_state:
        log.info("source since the snapshot: %s", report.source_state)
    if not report.ok:
        first = "; ".join(f"db{m.db} {m.key}: {m.kind} ({m.detail})" for m in report.mismatches[:5])
        raise VerificationError(f"{report.mismatch_count} difference(s) between source and target: {first}",
                                step="verify")
    return report


@task(name="verify-cutover", retries=0)
def verify_cutover(plan: MigrationPlan, endpoint: Endpoint, expected: VerifyReport) -> str:
    """After the switch: the app's config holds the new endpoint, and that endpoint serves the verified data.

    Every key was compared before approval, while nothing could write to either side. Here the app may
    already be writing to the target, so the check is one that app traffic cannot fail: the config reads
    back, the endpoint is a loaded primary, and each database still holds at least 90 % of the verified
    key count (a flushed, replaced or wrong server fails it).

    Raises:
        VerificationError: the config does not read back, or the endpoint is not a loaded master with the
            verified databases.
    """
    from elasticache_migrate.cutover.base import redact, render_value
    from elasticache_migrate.cutover import config_backend

    log = run_logger()
    backend = config_backend(plan)
    want = render_value(plan, endpoint)
    if backend is not None:
        got = backend.read()
        if got != want:
            raise VerificationError(f"{backend.describe()} reads {redact(got)}, expected {redact(want)}",
                                    remedy="another process changed the app's config; check it, then re-run",
                                    step="verify-cutover")
    try:
        r = target_client(plan, endpoint, timeout=10)
        info = r.info()
        counts = keyspace_dbs(r)
    except Exception as exc:  # noqa: BLE001 - unreachable target is the finding
        raise VerificationError(f"the new endpoint {endpoint.url()} does not answer: {exc}",
                                remedy="check the target and the network path from the app", step="verify-cutover",
                                ) from exc
    if info.get("role") != "master" or int(info.get("loading", 0)):
        raise VerificationError(f"{endpoint.url()} is {info.get('role')} (loading={info.get('loading')}), not a "
                                "loaded primary", step="verify-cutover")
    short = {db: (counts.get(db, 0), src) for db, (src, _t) in expected.dbs.items() if counts.get(db, 0) < src * 0.9}
    if short:
        detail = ", ".join(f"db{db}: {have} keys, {want} verified" for db, (have, want) in sorted(short.items()))
        raise VerificationError(f"{endpoint.url()} no longer holds the verified data ({detail})",
                                remedy="the target lost data or the config points at another server; inspect it "
                                "before trying again", step="verify-cutover")
    msg = f"app config {redact(want)} answers as a loaded primary with dbs {sorted(counts)}"
    log.info("cutover verified: %s", msg)
    return msg
