"""cluster_safety: would the source's apps still work against a target with cluster mode enabled?

A cluster-mode ElastiCache group has one database and spreads keys over 16384 slots; a command, transaction or
script that touches keys in different slots fails with ``CROSSSLOT``. Nothing on the source shows that error, so
this module reads the signs left behind (field notes, "Cluster-mode (CROSSSLOT) hazards"):

- key names of apps known not to work on a cluster (Sidekiq, Celery/kombu, Resque, Bull/BullMQ without a hash
  tag), looked for over the whole keyspace of every database: one SCAN pass, each key tested against the known
  key shapes (`KEY_SHAPES`, any namespace or prefix; `ShapeFilter`) — `classify_keys`, `app_findings`;
- ``INFO commandstats`` counts of multi-key commands, transactions, scripts and SELECT —
  `multikey_command_usage`, `command_findings` (plus Redis ≥ 8.0's ``cluster_incompatible_ops``);
- data outside db0 (``INFO keyspace``) — `keyspace_findings`.

The functions above are pure; `cluster_mode_findings` is the thin wrapper that reads a live server (any version
from 3.0: SELECT, SCAN and INFO only; the client should speak RESP2, ``protocol=2``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from elasticache_migrate.preflight.app_keys import (
    ANCHOR_KEYS,
    CHECK,
    KEY_SHAPES,
    BullQueue,
    app_findings,
    bull_queues,
    classify_keys,
    coverage_text,
)
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.slots import SLOTS, as_bytes, hash_tag, key_slot
from elasticache_migrate.source.config import config_get

__all__ = [
    "SLOTS",
    "ANCHOR_KEYS",
    "KEY_SHAPES",
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
    "shape_keys",
    "ShapeFilter",
    "SHAPES",
    "SCAN_COUNT",
    "SHAPE_CAP",
    "KEPT_CAP",
]


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


SCAN_COUNT = 10_000
"""SCAN's COUNT per call: a 1 M-key keyspace is 100 calls of a few ms of server time each."""
SHAPE_CAP = 5_000
"""Keys kept per shape and namespace (a million Bull job keys need not all be held); the scan always runs to the
end, so a shape's anchors under another namespace are still kept."""
KEPT_CAP = 500_000
"""Keys kept in all: past it the scan goes on counting but keeps nothing more."""


@dataclass(frozen=True)
class ShapeFilter:
    """`KEY_SHAPES` (globs of the forms ``x*``, ``*x``, ``*x*``) as fast byte tests.

    One SCAN pass over the whole keyspace, each key tested here, measured ~1.1 s per million keys on 2 cores; a
    ``SCAN MATCH`` pass per shape took ~0.6 s each (~14 s for all of them), that much server CPU on the source.
    """

    shapes: tuple[str, ...]

    def _parts(self, kind: str) -> tuple[bytes, ...]:
        out = []
        for g in self.shapes:
            core = g.strip("*").encode()
            form = ("infix" if g.startswith("*") and g.endswith("*") else "suffix" if g.startswith("*")
                    else "prefix" if g.endswith("*") else "exact")
            if "*" in g.strip("*") or "?" in g or "[" in g:
                raise ValueError(f"key shape {g!r}: only x*, *x and *x* are supported")
            if form == kind:
                out.append(core)
        return tuple(out)

    def __post_init__(self) -> None:
        infixes = self._parts("infix")
        object.__setattr__(self, "_prefixes", self._parts("prefix"))
        object.__setattr__(self, "_suffixes", self._parts("suffix"))
        object.__setattr__(self, "_exact", frozenset(self._parts("exact")))
        object.__setattr__(self, "_infix", re.compile(b"|".join(map(re.escape, infixes))).search if infixes
                           else (lambda k: None))
        # most specific first: exact, *x, *x*, x* (so bull:email:id is the anchor *:id, not a bull:* job key)
        order = sorted(self.shapes, key=lambda g: (g.startswith("*") + g.endswith("*") * 2, self.shapes.index(g)))
        object.__setattr__(self, "_ordered", [(g, self if len(self.shapes) == 1 else ShapeFilter((g,)))
                                              for g in order])

    def matches(self, key: bytes) -> bool:
        """Whether ``key`` has one of the shapes (what ``SCAN MATCH <shape>`` would return for some shape)."""
        d = self.__dict__
        return bool(key.startswith(d["_prefixes"]) or key.endswith(d["_suffixes"]) or key in d["_exact"]
                    or d["_infix"](key))

    def select(self, keys: list[bytes]) -> list[bytes]:
        """The ``keys`` that have a shape (one list comprehension of C-level tests: the scan's hot loop)."""
        d = self.__dict__
        pre, suf, exact, inf = d["_prefixes"], d["_suffixes"], d["_exact"], d["_infix"]
        return [k for k in keys if k.startswith(pre) or k.endswith(suf) or k in exact or inf(k)]

    def shape_of(self, key: bytes) -> str:
        """The most specific shape ``key`` has (exact, then ``*x``, ``*x*``, ``x*``), for the cap; call only on keys
        that `matches`. So ``bull:email:id`` is an anchor (``*:id``), not one of a million ``bull:*`` job keys."""
        return str(next(g for g, one in self.__dict__["_ordered"] if one.matches(key)))


SHAPES = ShapeFilter(KEY_SHAPES)


def shape_keys(r: redis.Redis, dbs: list[int], *, count: int = SCAN_COUNT,
               cap: int = SHAPE_CAP) -> tuple[list[bytes], list[str]]:
    """The keys of every database in ``dbs`` that have one of `KEY_SHAPES`: one SCAN (COUNT ``count``) over each
    whole database, every key tested by `SHAPES`.

    Runs on a connection of its own (SELECT must not change the databases of the pool's connections).

    Returns:
        The matching keys (each once, in scan order, at most ``cap`` per shape, namespace and database, and
        `KEPT_CAP` in all) and the shapes that had more.
    """
    conn: Any = r.connection_pool.make_connection()  # redis-py leaves send_command untyped
    keys: dict[bytes, None] = {}
    capped: list[str] = []
    try:
        for db in dbs:
            if db != conn.db:
                conn.send_command("SELECT", db)
                conn.read_response()
                conn.db = db
            kept: dict[tuple[str, bytes], int] = {}
            cursor: Any = b"0"
            while True:
                conn.send_command("SCAN", cursor, "COUNT", count)
                cursor, batch = conn.read_response()
                if batch and not isinstance(batch[0], bytes):  # a client that decodes responses
                    batch = [as_bytes(k) for k in batch]
                for k in SHAPES.select(batch):
                    shape = SHAPES.shape_of(k)
                    ns = k.replace(b"{", b"").split(b":", 1)[0]
                    n = kept[shape, ns] = kept.get((shape, ns), 0) + 1
                    if n <= cap and len(keys) < KEPT_CAP:
                        keys[k] = None
                    elif n == cap + 1 or len(keys) == KEPT_CAP:
                        where = ns.decode("utf-8", "replace") + ":…" if ns != k else ""
                        note = f"{shape} {where}".strip() + (f" (db{db})" if len(dbs) > 1 else "")
                        if note not in capped:
                            capped.append(note)
                if as_bytes(cursor) == b"0":
                    break
    finally:
        conn.disconnect()
    return list(keys), capped


def _db_sizes(keyspace: Mapping[str, Any]) -> dict[int, int]:
    """``INFO keyspace`` as {db: keys}; db0 always present."""
    sizes = {int(str(name)[2:]): _db_keys(v) for name, v in keyspace.items() if str(name).startswith("db")}
    return {0: 0, **sizes} if 0 not in sizes else sizes


def cluster_mode_findings(r: redis.Redis) -> list[Finding]:
    """Read the source and report what would break if the target had cluster mode enabled.

    Reads ``INFO commandstats``, ``INFO stats``, ``INFO server`` and ``INFO keyspace``; then every database holding
    keys with one SCAN pass, keeping the keys of `KEY_SHAPES` (the whole keyspace, not a sample: a namespaced
    Sidekiq among millions of other keys is found). Nothing is written. Works on Redis 3.0 onwards.

    Args:
        r: A client for the source (RESP2, ``protocol=2``, so Redis < 6 answers).

    Returns:
        The findings of `keyspace_findings`, `app_findings` (with an info line when no app was recognised) and
        `command_findings`; a warn for any part the server refused (renamed/ACL-denied commands).
    """
    out: list[Finding] = []
    commands: list[Finding] = []  # read first: the scan's own SELECT must not count as the app's
    try:
        stats = r.info("stats")
        ratio = None
        if "cluster_incompatible_ops" in stats:
            value = config_get(r, "cluster-compatibility-sample-ratio")
            ratio = int(value) if value is not None and value.isdigit() else None
        uptime = r.info("server").get("uptime_in_seconds")
        usage = multikey_command_usage(r.info("commandstats"))
    except redis.RedisError as exc:
        commands.append(_unreadable("INFO commandstats/stats", exc, "allow INFO for the migration user"))
    else:
        commands.extend(command_findings(usage, stats=stats, sample_ratio=ratio,
                                         uptime_seconds=int(uptime) if uptime is not None else None))
    sizes: dict[int, int] = {0: 0}
    try:
        keyspace = r.info("keyspace")
        sizes = _db_sizes(keyspace)
        out.extend(keyspace_findings(keyspace))
    except redis.RedisError as exc:
        out.append(_unreadable("INFO keyspace", exc, "allow INFO for the migration user"))
    try:
        dbs = [db for db, n in sorted(sizes.items()) if n > 0] or [0]
        keys, capped = shape_keys(r, dbs)
    except redis.RedisError as exc:
        out.append(_unreadable("the key names (SELECT/SCAN)", exc,
                               "allow SELECT and SCAN for the migration user, or check the apps by hand"))
    else:
        coverage = coverage_text({db: sizes.get(db, 0) for db in dbs}, capped)
        apps = app_findings(classify_keys(keys), coverage=coverage)
        out.extend(apps or [Finding(CHECK, "info", f"no Sidekiq, Celery/kombu, Resque or Bull/BullMQ keys found "
                                                   f"({coverage})")])
    out.extend(commands)
    return out
