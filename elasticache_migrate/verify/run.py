"""verify: the target holds exactly what the (still paused) source holds.

Per-db key counts first; then every key of the source is compared with the target by type, value and
TTL (within a tolerance). Both servers are read at the same time (one thread each), a batch of keys per
pipelined round trip (:mod:`.read`), the next batch already being read while one is compared; equal batches
are decided mostly in C, only keys that differ as read are looked at one by one (:mod:`.compare`). Keys the
target has that the source does not are looked for whenever the target holds more keys than matched.

For very large keyspaces ``verify.sample_keys`` compares a random sample and states the confidence it
gives; ``verify.probes`` names keys or patterns the app cannot live without; and the source is checked
to be unchanged since the snapshot (no write reached it: nothing can be lost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from elasticache_migrate.errors import SourceError
from elasticache_migrate.plan import MigrationPlan, VerifyOptions
from elasticache_migrate.rdb.compat import parse_version
from elasticache_migrate.source.connection import redis_errors, source_client, target_client
from elasticache_migrate.source.resp import RawConnection, raw_like
from elasticache_migrate.state import Endpoint, Snapshot
from elasticache_migrate.verify.compare import Mismatch, as_text, compare_key, show_key
from elasticache_migrate.verify.read import (
    Batch,
    batches,
    chunks_equal,
    fetch_states,
    key_state,
    keyspace_dbs,
    read_batch,
    scanned,
)
from elasticache_migrate.verify.report import VerifyReport

__all__ = ["compare_db", "sample_confidence", "source_unchanged", "source_verdict", "verify_endpoints",
           "writes_since_snapshot"]

Pools = tuple[ThreadPoolExecutor, ThreadPoolExecutor]


def _sample_keys(r: redis.Redis, n: int) -> Iterator[list[bytes]]:
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


def compare_db(src: redis.Redis, tgt: redis.Redis, db: int, opts: VerifyOptions, report: VerifyReport,
               pools: Pools, sample: int = 0) -> None:
    """Compare one db (redis-py clients SELECTed on it): every key, or a random sample of ``sample`` keys."""
    batch = opts.batch_size
    on_both = 0
    raw_src, raw_tgt = raw_like(src), raw_like(tgt)      # read by the two reader threads only
    big_src, big_tgt = raw_like(src), raw_like(tgt)      # chunked comparisons, from this thread
    scan_src = raw_like(src)                             # SCAN, from this thread
    smismember = parse_version(str(tgt.info("server").get("redis_version", "0"))) >= (6, 2)
    try:
        keys_iter = _sample_keys(src, sample) if sample else scanned(scan_src, batch)
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
                s, t = key_state(a, i), key_state(b, i)
                if s.type == "none":
                    continue  # expired on the source between SCAN and TYPE
                report.keys_checked += 1
                on_both += t.type != "none"
                k = keys[i]
                m = compare_key(db, k, s, t, tol)
                if m is None and s.value is None and t.type == s.type:
                    diff = chunks_equal(big_src, big_tgt, k, s.type, s.size, smismember, pools[0])
                    m = Mismatch(db, show_key(k), "value", diff) if diff else None
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
        for keys in batches(tgt.scan_iter(count=batch), batch):
            p = src.pipeline(transaction=False)
            for k in keys:
                p.exists(k)
            for k, present in zip(keys, p.execute(), strict=True):
                if not present:
                    report.add(Mismatch(db, show_key(k), "extra", "on target only"), opts.max_reported_mismatches)


def _prefetched(keys_iter: Iterable[list[bytes]], pools: Pools, src: RawConnection,
                tgt: RawConnection) -> Iterator[tuple[list[bytes], Batch, Batch]]:
    """Batches with both servers' states, the next batch already being read while one is compared.

    One single-thread reader per server: each connection is used by one thread, in order.
    """
    pending = None
    for keys in keys_iter:
        nxt = (keys, pools[0].submit(read_batch, src, keys), pools[1].submit(read_batch, tgt, keys))
        if pending:
            yield pending[0], pending[1].result(), pending[2].result()
        pending = nxt
    if pending:
        yield pending[0], pending[1].result(), pending[2].result()


def _probe(src: redis.Redis, tgt: redis.Redis, probe: str, opts: VerifyOptions) -> tuple[str, Mismatch | None]:
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


def writes_since_snapshot(info: Mapping[str, Any], snapshot: Snapshot) -> int:
    """How many writes INFO persistence ``info`` counts since ``snapshot`` (0 when none; a save since counts 1)."""
    changes = int(info.get("rdb_changes_since_last_save", 0))
    saves = info.get("rdb_saves")
    lastsave = int(info.get("rdb_last_save_time", 0))
    newer_save = lastsave != snapshot.last_save_time or (saves is not None and snapshot.rdb_saves is not None
                                                         and int(saves) != snapshot.rdb_saves)
    if newer_save:  # someone saved again: the counter restarted, so it says nothing about how many; at least one
        return max(1, changes)
    return max(0, changes - snapshot.changes_since_save)


def source_verdict(info: Mapping[str, Any], snapshot: Snapshot | None,
                   refusing: bool = False) -> tuple[str, Mismatch | None]:
    """The proof that no write reached the source after the snapshot, from INFO persistence (pure)."""
    changes = int(info.get("rdb_changes_since_last_save", 0))
    saves = info.get("rdb_saves")
    lastsave = int(info.get("rdb_last_save_time", 0))
    parts = [f"rdb_changes_since_last_save={changes}"]
    if saves is not None:
        parts.append(f"rdb_saves={saves}")
    parts.append(f"rdb_last_save_time={lastsave}")
    if refusing:
        parts.append("writes refused (min-slaves-to-write)")
    text = ", ".join(parts)
    if snapshot is None:
        return text, None
    if writes_since_snapshot(info, snapshot):
        return text, Mismatch(-1, "(source)", "source-changed",
                              f"the source changed after the snapshot ({text}): writes after it would be lost")
    return text, None


def source_unchanged(r: redis.Redis, snapshot: Snapshot | None) -> tuple[str, Mismatch | None]:
    """Proof that no write reached the source after the snapshot (so none can be lost by the cutover)."""
    info = r.info("persistence")
    refusing = False
    try:
        cfg = dict(r.config_get("min-*-to-write"))
        refusing = any(as_text(v) == "1000000" for v in cfg.values())
    except redis.ResponseError:  # CONFIG renamed, disabled or not granted: the counters still speak
        pass
    return source_verdict(info, snapshot, refusing)


def verify_endpoints(plan: MigrationPlan, endpoint: Endpoint, snapshot: Snapshot | None = None) -> VerifyReport:
    """Compare source and target (no Prefect context needed).

    Raises:
        SourceError: either server cannot be reached or refused a read (through :func:`redis_errors`).
    """
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
