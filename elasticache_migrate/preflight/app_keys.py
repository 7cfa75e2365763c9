"""App fingerprints in key names: apps known not to work on a cluster-mode target (Sidekiq, Celery/kombu, Resque,
Bull/BullMQ without a hash tag), and the findings that say so. Pure: the keys come from the live check in
:mod:`elasticache_migrate.preflight.cluster_safety`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.slots import as_bytes, hash_tag, key_slot

__all__ = [
    "CHECK", "ANCHOR_KEYS", "KEY_SHAPES", "BullQueue", "bull_queues", "classify_keys", "coverage_text",
    "app_findings",
]

CHECK = "cluster-mode"

ANCHOR_KEYS: tuple[bytes, ...] = (
    b"queues", b"processes", b"schedule", b"retry", b"dead", b"stat:processed", b"stat:failed",
    b"unacked", b"unacked_index", b"_kombu.binding.celery", b"_kombu.binding.celery.pidbox",
    b"_kombu.binding.celeryev", b"resque:queues", b"resque:workers", b"resque:stat:processed",
)
"""Fixed key names the fingerprints rely on (each matched by one of `KEY_SHAPES`)."""

KEY_SHAPES: tuple[str, ...] = (
    # Sidekiq, bare or under any redis-namespace ("myapp:queues", "myapp:queue:default", "myapp:stat:processed")
    "*queues", "*queue:*", "*processes", "*schedule", "*retry", "*dead", "*stat:processed*", "*stat:failed*",
    # Celery / kombu
    "_kombu.*", "celery*", "unacked*", "chord-unlock-*",
    # Resque
    "resque:*",
    # Bull / BullMQ under any prefix, hash-tagged or not: the queue's anchor keys "<prefix>:<queue>:<suffix>"
    "bull:*", "*:id", "*:meta", "*:stalled-check", "*:events", "*:marker", "*:wait",
)
"""The key shapes the fingerprints know, as SCAN ``MATCH`` globs (only ``x*``, ``*x``, ``*x*``): every key
`classify_keys` needs to recognise an app has one of them, wherever it sits in the keyspace. The live check tests
each scanned key against them (:class:`~elasticache_migrate.preflight.cluster_safety.ShapeFilter`). The shapes are
wide (any namespace or prefix); the regexes of `classify_keys` decide. Sidekiq's per-process keys
("host:pid:nonce") have no shape of their own: the ``processes`` set names them, and they only lengthen the list
of keys shown."""

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
    keys = list(dict.fromkeys(as_bytes(k) for k in keys))
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


def coverage_text(keys_per_db: Mapping[int, int], capped: Iterable[str] = ()) -> str:
    """How much of the keyspace the fingerprints saw, for the findings: the whole of it, shape by shape.

    Args:
        keys_per_db: The keys in each database scanned (``INFO keyspace`` / ``DBSIZE``).
        capped: The shapes (`KEY_SHAPES`, with their namespace) that had too many keys to keep them all: the scan
            went on to the end, only the list of such keys is partial (the app is found either way).
    """
    total = sum(keys_per_db.values())
    dbs = ", ".join(f"db{db}: {n:,}" for db, n in sorted(keys_per_db.items())) or "db0: 0"
    text = (f"scanned the whole keyspace of {total:,} key(s) ({dbs}) for {len(KEY_SHAPES)} known key shapes, any "
            "namespace")
    capped = list(capped)
    if capped:
        text += f"; keys of shape {', '.join(capped)} were too many to keep them all: the first ones were classified"
    return text


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
