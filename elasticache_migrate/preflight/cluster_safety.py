"""cluster_safety: would the source's apps still work against a target with cluster mode enabled?

A cluster-mode ElastiCache group has one database and spreads keys over 16384 slots; a command, transaction or
script that touches keys in different slots fails with ``CROSSSLOT``. Nothing on the source shows that error, so
this module reads the signs left behind (field notes, "Cluster-mode (CROSSSLOT) hazards"):

- key names of apps known not to work on a cluster (Sidekiq, Celery/kombu, Resque, Bull/BullMQ without a hash
  tag) — `classify_keys`, `app_findings`;
- ``INFO commandstats`` counts of multi-key commands, transactions, scripts and SELECT —
  `multikey_command_usage`, `command_findings` (plus Redis ≥ 8.0's ``cluster_incompatible_ops``);
- data outside db0 (``INFO keyspace``) — `keyspace_findings`.

The functions above are pure; `cluster_mode_findings` is the thin wrapper that reads a live server (any version
from 3.0: SCAN, EXISTS and INFO only; the client should speak RESP2, ``protocol=2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from elasticache_migrate.preflight.findings import Finding

__all__ = [
    "SLOTS",
    "ANCHOR_KEYS",
    "UNCOUNTABLE",
    "CommandUsage",
    "BullQueue",
    "hash_tag",
    "key_slot",
    "bull_queues",
    "classify_keys",
    "coverage_text",
    "app_findings",
    "multikey_command_usage",
    "command_findings",
    "keyspace_findings",
    "cluster_mode_findings",
]

CHECK = "cluster-mode"
SLOTS = 16384

# --- slots ----------------------------------------------------------------------------------------------------


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


def _as_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)


def hash_tag(key: bytes | str) -> bytes | None:
    """The part of ``key`` Redis Cluster hashes instead of the whole key, or None when there is none.

    Redis's rule: the first ``{``, then the first ``}`` after it; the bytes between are the tag if there is at
    least one. ``foo{}{bar}`` therefore has no tag (the whole key is hashed) and ``foo{{bar}}`` has ``{bar``.
    """
    k = _as_bytes(key)
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
    return _crc16(tag if tag is not None else _as_bytes(key)) % SLOTS


# --- app fingerprints -----------------------------------------------------------------------------------------

ANCHOR_KEYS: tuple[bytes, ...] = (
    b"queues", b"processes", b"schedule", b"retry", b"dead", b"stat:processed", b"stat:failed",
    b"unacked", b"unacked_index", b"_kombu.binding.celery", b"_kombu.binding.celery.pidbox",
    b"_kombu.binding.celeryev", b"resque:queues", b"resque:workers", b"resque:stat:processed",
)
"""Fixed key names the fingerprints rely on; probed with EXISTS so a bounded SCAN sample cannot miss them."""

# Sidekiq (optionally under one redis-namespace segment). Strong markers are names only Sidekiq-like apps use.
_SIDEKIQ_FIXED = re.compile(rb"^(?:(?P<ns>[^:{}]+):)?(?P<name>queues|schedule|retry|dead|processes)$")
_SIDEKIQ_STAT = re.compile(rb"^(?:(?P<ns>[^:{}]+):)?stat:(?:processed|failed)(?::\d{4}-\d{2}-\d{2})?$")
_SIDEKIQ_QUEUE = re.compile(rb"^(?:(?P<ns>[^:{}]+):)?queue:[^:]+$")
# a process: "<hostname>:<pid>:<12 hex nonce>" (Sidekiq ≥ 4), its ":workers" (< 7) or ":work" (7+) hash
_SIDEKIQ_PROCESS = re.compile(rb"^(?:(?P<ns>[^:{}]+):)?[A-Za-z0-9._-]+:\d+:[0-9a-f]{12}(?::workers|:work)?$")
_SIDEKIQ_STRONG = {"queues", "processes", "stat"}

_CELERY = re.compile(rb"^(?:_kombu\..+|celery-task-meta-.+|celery-taskset-meta-.+|chord-unlock-.+)$")
_CELERY_UNACKED = {b"unacked", b"unacked_index", b"unacked_mutex"}
_CELERY_QUEUE = re.compile(rb"^celery(?:\x06\x16\d{1,2})?$")  # the default queue, with its priority variants

# Bull (v3) and BullMQ key suffixes after "<prefix>:<queue>:"
_BULL_SUFFIXES = frozenset({
    "id", "wait", "waiting", "active", "completed", "failed", "delayed", "paused", "stalled", "stalled-check",
    "priority", "prioritized", "meta", "meta-paused", "events", "marker", "limiter", "repeat", "pc",
    "waiting-children", "de", "metrics", "drained", "limited",
})
_BULL_ANCHORS = frozenset({"id", "meta", "stalled-check", "events", "marker", "wait"})


@dataclass(frozen=True)
class BullQueue:
    """One Bull/BullMQ queue seen in the keys.

    Attributes:
        name: ``<prefix>:<queue>`` with any hash-tag braces removed, e.g. ``"bull:email"``.
        tag: The hash tag every key of the queue shares (``b"bull:email"``, ``b"bull"``), or None when the keys
            are untagged or do not share one tag — then they spread over slots.
        keys: The queue's keys, in the order seen.
    """

    name: str
    tag: bytes | None
    keys: tuple[bytes, ...]

    @property
    def slot(self) -> int | None:
        """The one slot all the queue's keys map to, when tagged."""
        return key_slot(self.tag) if self.tag is not None else None


def bull_queues(keys: Iterable[bytes]) -> list[BullQueue]:
    """Bull/BullMQ queues among ``keys``: ``bull:<queue>:…``, or another prefix with Bull's key layout.

    A key is read as ``<prefix>:<queue>:<suffix>…`` after removing the braces of a hash tag, so
    ``bull:email:wait``, ``{bull:email}:wait``, ``{bull}:email:wait`` and ``bull:{email}:wait`` are all queue
    ``bull:email``. With the default prefix ``bull`` any such key counts; under another prefix the queue needs two
    of Bull's suffixes (``wait``, ``meta``, ``id``, …), one of them structural, so ``user:42:active`` is not a queue.
    """
    groups: dict[tuple[str, str], list[bytes]] = {}
    suffixes: dict[tuple[str, str], set[str]] = {}
    for key in keys:
        plain = key.replace(b"{", b"").replace(b"}", b"").decode("utf-8", "replace")
        parts = plain.split(":")
        if len(parts) < 3 or not parts[0] or not parts[1]:
            continue
        g = (parts[0], parts[1])
        if parts[0] != "bull" and parts[2] not in _BULL_SUFFIXES:
            continue
        groups.setdefault(g, []).append(key)
        suffixes.setdefault(g, set()).add(parts[2])
    out = []
    for g, members in groups.items():
        seen = suffixes[g] & _BULL_SUFFIXES
        if g[0] != "bull" and (len(seen) < 2 or not seen & _BULL_ANCHORS):
            continue
        tags = {hash_tag(k) for k in members}
        tag = tags.pop() if len(tags) == 1 else None
        out.append(BullQueue(name=f"{g[0]}:{g[1]}", tag=tag, keys=tuple(members)))
    return out


def classify_keys(keys: Iterable[bytes]) -> dict[str, list[bytes]]:
    """Group ``keys`` by the app whose layout they match; apps not found are absent.

    Returns:
        Some of ``"sidekiq"``, ``"celery"``, ``"resque"``, ``"bull"`` (Bull/BullMQ keys without a shared hash tag)
        and ``"bull-tagged"`` (queues whose keys share one tag), each with its keys in the order seen. A name alone
        is weak evidence, so Sidekiq needs two kinds of its keys (one of ``queues``, ``processes``, ``stat:*``),
        Celery one ``_kombu.*``/``celery-task-meta-*`` key or both ``unacked`` and ``unacked_index``; Rails'
        ``read_multi`` leaves no key pattern (see the MGET count in `command_findings`).
    """
    keys = list(dict.fromkeys(_as_bytes(k) for k in keys))
    position = {k: i for i, k in enumerate(keys)}
    out: dict[str, list[bytes]] = {}

    # Sidekiq, per namespace ("" = none)
    kinds: dict[bytes, set[str]] = {}
    candidates: dict[bytes, list[bytes]] = {}
    processes: list[tuple[bytes, bytes]] = []
    for k in keys:
        if k.startswith(b"resque:"):
            continue  # Resque's layout is Sidekiq's ancestor: resque:queues, resque:stat:processed …
        for rx, kind in ((_SIDEKIQ_FIXED, None), (_SIDEKIQ_STAT, "stat"), (_SIDEKIQ_QUEUE, "queue")):
            m = rx.match(k)
            if m:
                ns = m.group("ns") or b""
                kinds.setdefault(ns, set()).add(kind or m.group("name").decode())
                candidates.setdefault(ns, []).append(k)
                break
        else:
            m = _SIDEKIQ_PROCESS.match(k)
            if m:
                processes.append((m.group("ns") or b"", k))
    sidekiq_ns = {ns for ns, ks in kinds.items() if len(ks) >= 2 and ks & _SIDEKIQ_STRONG}
    sidekiq = [k for ns in sidekiq_ns for k in candidates[ns]] + [k for ns, k in processes if ns in sidekiq_ns]
    if sidekiq:
        out["sidekiq"] = sorted(sidekiq, key=position.__getitem__)

    # Celery / kombu
    celery = [k for k in keys if _CELERY.match(k)]
    unacked = [k for k in keys if k in _CELERY_UNACKED]
    if celery or {b"unacked", b"unacked_index"} <= set(unacked):
        celery += unacked + [k for k in keys if _CELERY_QUEUE.match(k)]
        out["celery"] = sorted(set(celery), key=position.__getitem__)

    # Resque
    resque = [k for k in keys if k.startswith(b"resque:")]
    if resque:
        out["resque"] = resque

    # Bull / BullMQ
    for q in bull_queues(keys):
        out.setdefault("bull-tagged" if q.tag is not None else "bull", []).extend(q.keys)
    return out


def _sample(keys: list[bytes], n: int = 8) -> str:
    """Up to ``n`` keys for a finding: the shortest first (``queues``, ``retry`` say more than a job id's key)."""
    shown = ", ".join(k.decode("utf-8", "backslashreplace") for k in sorted(keys, key=lambda k: (len(k), k))[:n])
    return shown + (f" (+{len(keys) - n:,} more)" if len(keys) > n else "")


def coverage_text(scanned: int, dbsize: int | None, probed: int = 0) -> str:
    """How much of db0 the fingerprints saw, for the findings: all of it, or a sample of how many keys."""
    extra = f", plus {probed} well-known key name(s) probed with EXISTS" if probed else ""
    if dbsize is None:
        return f"{scanned:,} key(s) scanned{extra}"
    if dbsize == 0:
        return f"db0 is empty{extra}"
    if scanned >= dbsize:
        return f"all {dbsize:,} key(s) of db0 scanned{extra}"
    return (f"a SCAN sample of {scanned:,} of {dbsize:,} keys in db0{extra}: apps whose keys fell outside the "
            "sample are not seen")


_KEEP_DISABLED = ("keep cluster mode disabled for this target (target.cluster_mode: false; a cluster-mode-disabled "
                  "group still scales reads with replicas and up to 16 databases)")


def app_findings(classified: Mapping[str, list[bytes]], *, coverage: str = "") -> list[Finding]:
    """One finding per app `classify_keys` found: block for those that break on a cluster, info for tagged Bull.

    Args:
        classified: What `classify_keys` returned.
        coverage: `coverage_text` for the scan that produced the keys (appended to what was seen).
    """
    seen_in = f" [{coverage}]" if coverage else ""
    out: list[Finding] = []
    if "sidekiq" in classified:
        out.append(Finding(CHECK, "block", f"Sidekiq keys: {_sample(classified['sidekiq'])}. Sidekiq does not support "
                           "Redis Cluster: it moves jobs between queue:*, schedule, retry and dead and updates "
                           "processes/stat:* in MULTI blocks and scripts spanning slots, which fail with CROSSSLOT"
                           + seen_in, _KEEP_DISABLED + "; or move Sidekiq to its own cluster-mode-disabled group"))
    if "celery" in classified:
        out.append(Finding(CHECK, "block", f"Celery/kombu keys: {_sample(classified['celery'])}. kombu's Redis "
                           "transport keeps bindings (_kombu.binding.*), queues and the unacked/unacked_index "
                           "restore lists in separate keys and moves messages between them in pipelines/MULTI — "
                           "CROSSSLOT on a cluster; the result backend reads groups with MGET" + seen_in,
                           _KEEP_DISABLED + "; or move the Celery broker/results to a cluster-mode-disabled group"))
    if "resque" in classified:
        out.append(Finding(CHECK, "block", f"Resque keys: {_sample(classified['resque'])}. Resque reads worker and "
                           "stat keys with MGET and pops queues across keys; they sit in different slots" + seen_in,
                           _KEEP_DISABLED + "; or move Resque to its own cluster-mode-disabled group"))
    queues = bull_queues([*classified.get("bull", []), *classified.get("bull-tagged", [])])
    untagged = [q for q in queues if q.tag is None]
    if untagged:
        names = ", ".join(q.name for q in untagged)
        sample = [k for q in untagged for k in sorted(q.keys, key=lambda k: (len(k), k))[:3]]
        out.append(Finding(CHECK, "block", f"Bull/BullMQ queue(s) without a hash tag: {names} "
                           f"(keys {_sample(sample)}). Every job operation runs a Lua script over several of the "
                           "queue's keys, which land in different slots → CROSSSLOT" + seen_in,
                           "keep cluster mode disabled, or give the queues a hash-tag prefix (Bull/BullMQ option "
                           "prefix: '{bull}', or braces around the queue name) — jobs already queued stay under the "
                           "old key names: drain the queues (or re-add their jobs) after switching"))
    for q in queues:
        if q.tag is not None:
            tag = q.tag.decode("utf-8", "backslashreplace")
            out.append(Finding(CHECK, "info", f"Bull/BullMQ queue {q.name} uses hash tag {{{tag}}}: all its "
                               f"{len(q.keys):,} key(s) seen map to slot {q.slot} — fine with cluster mode"))
    return out


# --- commandstats ---------------------------------------------------------------------------------------------

_DB_COMMANDS = ("select", "move", "swapdb")
_TRANSACTIONS = ("multi", "exec")
_SCRIPTS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
_MULTI_KEY = (
    "mget", "mset", "msetnx", "rpoplpush", "brpoplpush", "lmove", "blmove", "smove", "rename", "renamenx", "copy",
    "sunionstore", "sinterstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore", "zrangestore",
    "sunion", "sinter", "sdiff", "sintercard", "zunion", "zinter", "zdiff", "zintercard",
    "lmpop", "blmpop", "zmpop", "bzmpop", "pfmerge", "pfcount", "bitop",
)
_KIND = {**{c: "databases" for c in _DB_COMMANDS}, **{c: "transaction" for c in _TRANSACTIONS},
         **{c: "script" for c in _SCRIPTS}, **{c: "multi-key" for c in _MULTI_KEY}}
# counted, but mostly called with one key: a count says nothing about cross-slot use
_MAYBE_ONE_KEY = frozenset({"mget", "mset", "pfcount", "sunion", "sinter", "sdiff", "zunion", "zinter", "zdiff",
                            "sintercard", "zintercard", "lmpop", "blmpop", "zmpop", "bzmpop"})
UNCOUNTABLE = ("BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX", "DEL", "UNLINK", "EXISTS", "TOUCH", "WATCH", "SORT … BY/GET")


@dataclass(frozen=True)
class CommandUsage:
    """How often the source ran one command that can fail on a cluster.

    Attributes:
        command: Lower-case command name, e.g. ``"mget"``.
        calls: ``calls`` from ``INFO commandstats`` (since start or ``CONFIG RESETSTAT``).
        kind: ``"databases"`` (SELECT/MOVE/SWAPDB), ``"transaction"``, ``"script"`` or ``"multi-key"``.
    """

    command: str
    calls: int
    kind: str

    def __str__(self) -> str:
        return f"{self.command.upper()} ×{self.calls:,}"


def _duration(seconds: int) -> str:
    """``3 days``, ``5 h``, ``12 min``, ``40 s``."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _calls(value: Any) -> int:
    """``calls`` from one commandstats entry: redis-py's dict, or the raw ``calls=…,usec=…`` text."""
    if isinstance(value, Mapping):
        return int(value.get("calls", 0))
    if isinstance(value, bytes):
        value = value.decode()
    for part in str(value).split(","):
        name, _, number = part.partition("=")
        if name.strip() == "calls":
            return int(number)
    return 0


def multikey_command_usage(commandstats: Mapping[str, Any]) -> list[CommandUsage]:
    """The commands in ``INFO commandstats`` that fail on a cluster when their keys span slots, most used first.

    Args:
        commandstats: ``r.info("commandstats")``: ``{"cmdstat_mget": {"calls": 3, …}, …}`` (the prefix and
            Redis 7's ``cmd|subcommand`` entries are handled; raw ``"calls=3,usec=…"`` strings too).

    Returns:
        Only commands with calls. BLPOP/BRPOP/DEL/EXISTS/WATCH… with several keys cannot be told from their
        single-key use by a count, so they are not listed (see ``UNCOUNTABLE``).
    """
    out = []
    for name, value in commandstats.items():
        cmd = str(name).lower().removeprefix("cmdstat_")
        if cmd in _KIND:
            calls = _calls(value)
            if calls > 0:
                out.append(CommandUsage(cmd, calls, _KIND[cmd]))
    return sorted(out, key=lambda u: (-u.calls, u.command))


def command_findings(
    usage: list[CommandUsage],
    *,
    stats: Mapping[str, Any] | None = None,
    sample_ratio: int | None = None,
    uptime_seconds: int | None = None,
) -> list[Finding]:
    """Findings from `multikey_command_usage` and, on Redis ≥ 8.0, ``cluster_incompatible_ops``.

    Args:
        usage: What `multikey_command_usage` returned.
        stats: ``INFO stats`` (only ``cluster_incompatible_ops`` is read; absent before Redis 8.0).
        sample_ratio: ``cluster-compatibility-sample-ratio`` (percent of commands Redis 8 checks; 0 = off), None
            when unknown.
        uptime_seconds: ``uptime_in_seconds``, to say how long the counts cover.

    Returns:
        warn when SELECT/MOVE/SWAPDB were used; warn listing transactions, scripts and multi-key commands; block
        when Redis 8 counted operations that would have failed; info when nothing was counted.
    """
    since = ("since the server started" + (f" (up {_duration(uptime_seconds)})" if uptime_seconds is not None else "")
             + " or its last CONFIG RESETSTAT")
    out: list[Finding] = []
    db = [u for u in usage if u.kind == "databases"]
    rest = [u for u in usage if u.kind != "databases"]
    if db:
        out.append(Finding(CHECK, "warn", f"the app selects databases ({', '.join(map(str, db))} {since}): a "
                           "cluster has only db 0, where SELECT of any other index fails",
                           "point the apps at db 0 (SELECT 0 is harmless — if INFO keyspace shows only db0 these "
                           "may be SELECT 0 calls), or keep cluster mode disabled"))
    if rest:
        maybe = sorted(u.command.upper() for u in rest if u.command in _MAYBE_ONE_KEY)
        note = (f"; {', '.join(maybe)} only fail(s) with several keys in different slots" if maybe else "")
        calls = {u.command: u.calls for u in rest}
        if calls.get("exec", 0) > calls.get("multi", 0):
            note += ("; EXEC counted more often than MULTI: Redis 3.2 books the commands queued in a transaction "
                     "under EXEC, so their own counts are low")
        out.append(Finding(CHECK, "warn", f"commands that fail with CROSSSLOT when their keys are in different slots "
                           f"were run {since}: {', '.join(map(str, rest))}{note}. Counts cannot show whether the keys "
                           f"shared a slot; {', '.join(UNCOUNTABLE)} with several keys are not countable at all",
                           "find the callers (APM traces, a short MONITOR) and make each use one key or keys with a "
                           "common {hash tag}; on Redis ≥ 8.0 set cluster-compatibility-sample-ratio to count real "
                           "cross-slot calls; or keep cluster mode disabled"))
    if not usage:
        out.append(Finding(CHECK, "info", f"no SELECT, transaction, script or multi-key command counted {since}; "
                           f"{', '.join(UNCOUNTABLE)} with several keys are not countable"))
    ops = (stats or {}).get("cluster_incompatible_ops")
    if ops is not None:
        ops = int(ops)
        ratio = f"{sample_ratio}% of commands sampled" if sample_ratio is not None else "sample ratio unknown"
        if ops > 0:
            out.append(Finding(CHECK, "block", f"the source counted {ops:,} operation(s) that would fail in cluster "
                               f"mode (INFO stats cluster_incompatible_ops, {ratio})",
                               "find and fix the cross-slot/cross-db calls (hash tags, db 0), or keep cluster mode "
                               "disabled; CONFIG RESETSTAT and re-run preflight after the fix"))
        elif sample_ratio:
            out.append(Finding(CHECK, "info", f"cluster_incompatible_ops is 0 with {ratio}: no cross-slot "
                               "operation seen"))
        else:
            out.append(Finding(CHECK, "info", "this server can count cross-slot operations, but sampling is off "
                               "(cluster-compatibility-sample-ratio 0)",
                               "CONFIG SET cluster-compatibility-sample-ratio 100 for a representative period, then "
                               "re-run preflight"))
    return out


# --- keyspace -------------------------------------------------------------------------------------------------


def _db_keys(value: Any) -> int:
    if isinstance(value, Mapping):
        return int(value.get("keys", 0))
    if isinstance(value, bytes):
        value = value.decode()
    for part in str(value).split(","):
        name, _, number = part.partition("=")
        if name.strip() == "keys":
            return int(number)
    return 0


def keyspace_findings(keyspace: Mapping[str, Any]) -> list[Finding]:
    """Block when a database other than db0 holds keys: a cluster has db 0 only.

    Args:
        keyspace: ``r.info("keyspace")``: ``{"db0": {"keys": 5, …}, "db2": {…}}`` (raw ``keys=5,…`` too).
    """
    counts = {int(str(name)[2:]): _db_keys(v) for name, v in keyspace.items() if str(name).startswith("db")}
    others = {db: n for db, n in sorted(counts.items()) if db != 0 and n > 0}
    if others:
        listed = ", ".join(f"db{db} ({n:,} key{'s' if n != 1 else ''})" for db, n in others.items())
        return [Finding(CHECK, "block", f"data outside db0: {listed}. A cluster has one database, and ElastiCache "
                        "seeds a cluster-mode group only from an RDB holding db0",
                        "move the data into db0 (MOVE each key, renaming or prefixing names that clash) and point "
                        "the apps at db 0, or keep cluster mode disabled (16 databases)")]
    return [Finding(CHECK, "info", f"all {counts.get(0, 0):,} key(s) are in db0")]


# --- the live check -------------------------------------------------------------------------------------------


def _unreadable(what: str, exc: Exception, todo: str) -> Finding:
    return Finding(CHECK, "warn", f"could not read {what}: {type(exc).__name__}: {exc}", todo)


def _sample_keys(r: redis.Redis, sample: int) -> list[bytes]:
    keys: dict[bytes, None] = {}
    for k in r.scan_iter(count=1000):
        keys[_as_bytes(k)] = None
        if len(keys) >= sample:
            break
    return list(keys)


def _probe_anchors(r: redis.Redis, already: set[bytes]) -> list[bytes]:
    todo = [k for k in ANCHOR_KEYS if k not in already]
    pipe = r.pipeline(transaction=False)
    for k in todo:
        pipe.exists(k)  # one key per EXISTS: several keys need Redis ≥ 3.0.3
    return [k for k, n in zip(todo, pipe.execute(), strict=True) if n]


def cluster_mode_findings(r: redis.Redis, *, sample: int = 10_000) -> list[Finding]:
    """Read the source and report what would break if the target had cluster mode enabled.

    Reads ``INFO keyspace``, a bounded SCAN of db0 (``COUNT 1000``, at most ``sample`` keys) plus EXISTS on
    ``ANCHOR_KEYS``, ``INFO commandstats``, ``INFO stats`` and ``INFO server``; nothing is written. Works on
    Redis 3.0 onwards.

    Args:
        r: A client for the source's db0 (RESP2, ``protocol=2``, so Redis < 6 answers).
        sample: The most keys to SCAN; the findings say when that did not cover db0.

    Returns:
        The findings of `keyspace_findings`, `app_findings` (with an info line when no app was recognised) and
        `command_findings`; a warn for any part the server refused (renamed/ACL-denied commands).
    """
    out: list[Finding] = []
    try:
        out.extend(keyspace_findings(r.info("keyspace")))
    except redis.RedisError as exc:
        out.append(_unreadable("INFO keyspace", exc, "allow INFO for the migration user"))
    try:
        keys = _sample_keys(r, sample)
        probed = _probe_anchors(r, set(keys))
        dbsize = int(r.dbsize())
    except redis.RedisError as exc:
        out.append(_unreadable("the key names (SCAN/EXISTS/DBSIZE)", exc,
                               "allow SCAN, EXISTS and DBSIZE for the migration user, or check the apps by hand"))
    else:
        coverage = coverage_text(len(keys), dbsize, len(probed))
        apps = app_findings(classify_keys(keys + probed), coverage=coverage)
        out.extend(apps or [Finding(CHECK, "info", f"no Sidekiq, Celery/kombu, Resque or Bull/BullMQ keys found "
                                                   f"({coverage})")])
    try:
        stats = r.info("stats")
        ratio = None
        if "cluster_incompatible_ops" in stats:
            try:
                got = r.config_get("cluster-compatibility-sample-ratio")
                value = next(iter(dict(got).values()), None)
                ratio = int(value) if value is not None else None
            except (redis.RedisError, ValueError):
                ratio = None
        uptime = r.info("server").get("uptime_in_seconds")
        usage = multikey_command_usage(r.info("commandstats"))
    except redis.RedisError as exc:
        out.append(_unreadable("INFO commandstats/stats", exc, "allow INFO for the migration user"))
    else:
        out.extend(command_findings(usage, stats=stats, sample_ratio=ratio,
                                    uptime_seconds=int(uptime) if uptime is not None else None))
    return out
