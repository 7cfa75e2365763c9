"""verify: the target holds exactly what the (still paused) source holds.

Per-db key counts first, then every key of the source compared with the target by type, value and TTL
(within a tolerance), fetched with SCAN and pipelines from both servers. Keys the target has that the
source does not are looked for whenever the counts differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.connect import Endpoint, source_client, target_client
from tasks.errors import SourceError, VerificationError, mapped
from tasks.plan import MigrationPlan
from tasks.retry import IO_RETRIES

__all__ = [
    "KeyState",
    "Mismatch",
    "VerifyReport",
    "compare_key",
    "fetch_states",
    "compare_db",
    "keyspace_dbs",
    "verify_endpoints",
    "verify",
    "verify_cutover",
    "report_markdown",
]


@dataclass(frozen=True)
class KeyState:
    """A key as read from one server: type, normalised value, PTTL (-1 none, -2 absent)."""

    type: str
    value: Any
    pttl: int


@dataclass(frozen=True)
class Mismatch:
    """One difference between source and target."""

    db: int
    key: str
    kind: str        # missing | type | value | ttl | extra
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

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0

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
    if src.value != tgt.value:
        return Mismatch(db, name, "value", f"source {_brief(src.value)} != target {_brief(tgt.value)}")
    if (src.pttl < 0) != (tgt.pttl < 0):
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl}, target PTTL {tgt.pttl}")
    if src.pttl >= 0 and abs(src.pttl - tgt.pttl) > tolerance_ms:
        return Mismatch(db, name, "ttl", f"source PTTL {src.pttl} ms, target {tgt.pttl} ms (> {tolerance_ms} ms)")
    return None


def _queue_value(p: Any, t: str, key: bytes) -> None:
    """Queue the commands that read a key's whole value for its type."""
    if t == "string":
        p.get(key)
    elif t == "list":
        p.lrange(key, 0, -1)
    elif t == "set":
        p.smembers(key)
    elif t == "zset":
        p.zrange(key, 0, -1, withscores=True)
    elif t == "hash":
        p.hgetall(key)
    elif t == "stream":
        p.xrange(key, "-", "+")
        p.execute_command("XINFO", "GROUPS", key)
    else:
        p.execute_command("DUMP", key)  # unknown/module type: compare the serialized form


def _normalise(t: str, raw: list[Any]) -> Any:
    """Make a fetched value comparable across servers and encodings."""
    if t == "set":
        return frozenset(raw[0])
    if t == "zset":
        return [(m, float(s)) for m, s in raw[0]]
    if t == "stream":
        entries = [(eid, tuple(sorted(fields.items()))) for eid, fields in raw[0]]
        groups = []
        for g in raw[1] or []:
            d = dict(zip(g[::2], g[1::2], strict=False)) if isinstance(g, list) else dict(g)
            groups.append((d.get(b"name"), d.get(b"consumers"), d.get(b"pending"), d.get(b"last-delivered-id")))
        return (entries, sorted(groups, key=repr))
    return raw[0]


def fetch_states(r: Any, keys: list[bytes]) -> list[KeyState]:
    """TYPE, PTTL and the value of each key, in two pipelined round trips."""
    p = r.pipeline(transaction=False)
    for k in keys:
        p.type(k)
        p.pttl(k)
    head = p.execute()
    types = [t.decode() if isinstance(t, bytes) else str(t) for t in head[0::2]]
    ttls = [int(x) for x in head[1::2]]
    p = r.pipeline(transaction=False)
    counts = []
    for k, t in zip(keys, types, strict=True):
        if t == "none":
            counts.append(0)
            continue
        before = len(p.command_stack)
        _queue_value(p, t, k)
        counts.append(len(p.command_stack) - before)
    values = p.execute(raise_on_error=False) if p.command_stack else []
    out, i = [], 0
    for t, ttl, n in zip(types, ttls, counts, strict=True):
        raw = values[i:i + n]
        i += n
        if t != "none" and any(isinstance(x, Exception) for x in raw):
            t = "none" if any("no such key" in str(x).lower() for x in raw) else t
        out.append(KeyState(t, _normalise(t, raw) if n else None, ttl))
    return out


def keyspace_dbs(r: Any) -> dict[int, int]:
    """db number -> key count, from INFO keyspace."""
    out = {}
    for name, v in r.info("keyspace").items():
        if str(name).startswith("db"):
            out[int(str(name)[2:])] = int(v["keys"]) if isinstance(v, dict) else int(str(v).split(",")[0][5:])
    return out


def compare_db(src: Any, tgt: Any, db: int, opts: Any, report: VerifyReport) -> None:
    """Compare every key of one db (both clients already SELECTed on it)."""
    batch = opts.batch_size
    on_both = 0
    for keys in _batches(src.scan_iter(count=batch), batch):
        a, b = fetch_states(src, keys), fetch_states(tgt, keys)
        for k, s, t in zip(keys, a, b, strict=True):
            if s.type == "none":
                continue  # expired on the source between SCAN and TYPE
            report.keys_checked += 1
            on_both += t.type != "none"
            m = compare_key(db, k, s, t, opts.ttl_tolerance_ms)
            if m is not None:
                report.add(m, opts.max_reported_mismatches)
            elif t.type == "none":
                report.expired_during += 1
    src_n, tgt_n = src.dbsize(), tgt.dbsize()
    report.dbs[db] = (src_n, tgt_n)
    if tgt_n > on_both:  # the target holds keys the source's SCAN did not bring: find them
        for keys in _batches(tgt.scan_iter(count=batch), batch):
            p = src.pipeline(transaction=False)
            for k in keys:
                p.exists(k)
            for k, present in zip(keys, p.execute(), strict=True):
                if not present:
                    report.add(Mismatch(db, _show(k), "extra", "on target only"), opts.max_reported_mismatches)


def _batches(it: Any, n: int) -> Any:
    buf: list[bytes] = []
    for k in it:
        buf.append(k)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def verify_endpoints(plan: MigrationPlan, endpoint: Endpoint) -> VerifyReport:
    """Compare source and target (no Prefect context needed)."""
    t0 = time.monotonic()
    report = VerifyReport()
    with mapped("verify", SourceError, "verify"):
        dbs = sorted(set(keyspace_dbs(source_client(plan))) | set(keyspace_dbs(target_client(plan, endpoint))))
        for db in dbs or [0]:
            compare_db(source_client(plan, db=db), target_client(plan, endpoint, db=db), db, plan.verify, report)
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def report_markdown(report: VerifyReport) -> str:
    """The verify result as markdown (for the artifact and stdout)."""
    lines = ["| db | source keys | target keys |", "|---:|---:|---:|"]
    lines += [f"| {db} | {s} | {t} |" for db, (s, t) in sorted(report.dbs.items())]
    verdict = "**all keys equal**" if report.ok else f"**{report.mismatch_count} mismatch(es)**"
    lines += ["", f"{report.keys_checked} keys compared by type, value and TTL in {report.seconds}s: {verdict}"
              f" ({report.expired_during} expired while checking)."]
    if report.mismatches:
        lines += ["", "| db | key | kind | detail |", "|---:|---|---|---|"]
        lines += [f"| {m.db} | `{m.key}` | {m.kind} | {m.detail.replace('|', '/')} |" for m in report.mismatches]
    return "\n".join(lines)


@task(name="verify", **IO_RETRIES)
def verify(plan: MigrationPlan, endpoint: Endpoint) -> VerifyReport:
    """Compare every key of the source with the target; publish a table artifact.

    Raises:
        VerificationError: counts or any key differ (the first mismatches are named).
    """
    log = get_run_logger()
    report = verify_endpoints(plan, endpoint)
    rows = [{"db": db, "source keys": s, "target keys": t} for db, (s, t) in sorted(report.dbs.items())]
    create_table_artifact(key=f"verify-{plan.migration_id}", table=rows or [{"db": 0, "source keys": 0,
                          "target keys": 0}], description=f"Key counts, source vs target ({endpoint.url()})")
    md = report_markdown(report)
    create_markdown_artifact(key=f"verify-report-{plan.migration_id}", markdown=md,
                             description="Verify result")
    log.info("verify: %s keys compared in %ss, %s mismatches", report.keys_checked, report.seconds,
             report.mismatch_count)
    if not report.ok:
        first = "; ".join(f"db{m.db} {m.key}: {m.kind} ({m.detail})" for m in report.mismatches[:5])
        raise VerificationError(f"{report.mismatch_count} key(s) differ between source and target: {first}",
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
    from tasks.cutover import config_backend
    from tasks.cutover.base import redact, render_value

    log = get_run_logger()
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
