"""sizing: does the source's data, plus headroom, fit the target node type?

ElastiCache loads the seed RDB into ``maxmemory`` less ``reserved-memory-percent`` (25 % by default); data that
does not fit ends the group in ``restore-failed``, which only delete-and-recreate fixes (field notes, "ElastiCache
seeding"). Size from the source's ``used_memory`` (INFO memory, or the RDB aux field ``used-mem``), not from the
file, which is compressed and leaves out per-key overhead.

`usable_bytes`, `needed_bytes`, `smallest_fitting` and `size_findings` are pure; `used_memory_from` reads a live
server and `used_memory_from_rdb_aux` an RDB's aux fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import redis

from elasticache_migrate.preflight.findings import Finding

__all__ = [
    "GIB",
    "NODE_TYPES",
    "DATA_TIERING_SSD_GIB",
    "node_family",
    "usable_bytes",
    "needed_bytes",
    "smallest_fitting",
    "size_findings",
    "memory_usage",
    "used_memory_from",
    "used_memory_from_rdb_aux",
]

CHECK = "sizing"
GIB = 1 << 30
WARN_FILL = 0.8  # data + headroom above this share of usable memory is a warning

# Memory (GiB) per node type: AWS ElastiCache User Guide, "Supported node types", column "Memory (GiB)" of the
# Redis OSS / Valkey tables (read from awsdocs/amazon-elasticache-docs, doc_source/CacheNodes.SupportedTypes.md;
# the Memcached table gives the same figures). maxmemory is this figure; ElastiCache then reserves
# reserved-memory-percent of it. Every row below is from that page (none estimated). Not listed on purpose: the
# previous generations (t2, m4, r4), and m8g/r8g/c8gn, which the page offers for Valkey only.
NODE_TYPES: dict[str, float] = {
    # burstable (AWS suggests reserved-memory-percent up to 50 % on micro, 30 % on small)
    "cache.t3.micro": 0.5, "cache.t3.small": 1.37, "cache.t3.medium": 3.09,
    "cache.t4g.micro": 0.5, "cache.t4g.small": 1.37, "cache.t4g.medium": 3.09,
    # general purpose
    "cache.m5.large": 6.38, "cache.m5.xlarge": 12.93, "cache.m5.2xlarge": 26.04, "cache.m5.4xlarge": 52.26,
    "cache.m5.12xlarge": 157.12, "cache.m5.24xlarge": 314.32,
    "cache.m6g.large": 6.38, "cache.m6g.xlarge": 12.93, "cache.m6g.2xlarge": 26.04, "cache.m6g.4xlarge": 52.26,
    "cache.m6g.8xlarge": 103.68, "cache.m6g.12xlarge": 157.12, "cache.m6g.16xlarge": 209.55,
    "cache.m7g.large": 6.38, "cache.m7g.xlarge": 12.93, "cache.m7g.2xlarge": 26.04, "cache.m7g.4xlarge": 52.26,
    "cache.m7g.8xlarge": 103.68, "cache.m7g.12xlarge": 157.12, "cache.m7g.16xlarge": 209.55,
    # memory optimized
    "cache.r5.large": 13.07, "cache.r5.xlarge": 26.32, "cache.r5.2xlarge": 52.82, "cache.r5.4xlarge": 105.81,
    "cache.r5.12xlarge": 317.77, "cache.r5.24xlarge": 635.61,
    "cache.r6g.large": 13.07, "cache.r6g.xlarge": 26.32, "cache.r6g.2xlarge": 52.82, "cache.r6g.4xlarge": 105.81,
    "cache.r6g.8xlarge": 209.55, "cache.r6g.12xlarge": 317.77, "cache.r6g.16xlarge": 419.09,
    "cache.r7g.large": 13.07, "cache.r7g.xlarge": 26.32, "cache.r7g.2xlarge": 52.82, "cache.r7g.4xlarge": 105.81,
    "cache.r7g.8xlarge": 209.55, "cache.r7g.12xlarge": 317.77, "cache.r7g.16xlarge": 419.09,
    # memory optimized with data tiering (Redis OSS ≥ 6.2 / Valkey): memory only here, SSD below
    "cache.r6gd.xlarge": 26.32, "cache.r6gd.2xlarge": 52.82, "cache.r6gd.4xlarge": 105.81,
    "cache.r6gd.8xlarge": 209.55, "cache.r6gd.12xlarge": 317.77, "cache.r6gd.16xlarge": 419.09,
    # network optimized (Redis OSS ≥ 6.2 / Valkey)
    "cache.c7gn.large": 3.09, "cache.c7gn.xlarge": 6.38, "cache.c7gn.2xlarge": 12.94, "cache.c7gn.4xlarge": 26.05,
    "cache.c7gn.8xlarge": 52.26, "cache.c7gn.12xlarge": 78.56, "cache.c7gn.16xlarge": 105.81,
}

DATA_TIERING_SSD_GIB: dict[str, float] = {
    "cache.r6gd.xlarge": 99.33, "cache.r6gd.2xlarge": 199.07, "cache.r6gd.4xlarge": 398.14,
    "cache.r6gd.8xlarge": 796.28, "cache.r6gd.12xlarge": 1194.42, "cache.r6gd.16xlarge": 1592.56,
}
"""SSD per data-tiering node (same page). Keys and hot values stay in memory, cold values move to the SSD: data
beyond memory is a warning there, beyond memory + SSD a block."""


def node_family(node_type: str) -> str:
    """``"cache.r7g.large"`` -> ``"cache.r7g"``."""
    return node_type.rsplit(".", 1)[0]


def _check_percent(reserved_memory_percent: float) -> None:
    if not 0 <= reserved_memory_percent < 100:
        raise ValueError(f"reserved_memory_percent must be in [0, 100), not {reserved_memory_percent}")


def usable_bytes(node_type: str, reserved_memory_percent: float = 25, *,
                 node_types: Mapping[str, float] = NODE_TYPES) -> int:
    """Bytes a node of ``node_type`` holds for data: its maxmemory less ``reserved_memory_percent``.

    Raises:
        KeyError: ``node_type`` is not in ``node_types``.
        ValueError: ``reserved_memory_percent`` outside [0, 100).
    """
    _check_percent(reserved_memory_percent)
    return int(node_types[node_type] * GIB * (100 - reserved_memory_percent) / 100)


def needed_bytes(used_memory: int, headroom: float = 0.3) -> int:
    """``used_memory`` plus ``headroom`` (0.3 = 30 % for growth and the new node's own overhead), rounded up."""
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, not {headroom}")
    return math.ceil(used_memory * (1 + headroom))


def smallest_fitting(needed: int, *, family: str | None = None, reserved_memory_percent: float = 25,
                     node_types: Mapping[str, float] = NODE_TYPES) -> list[str]:
    """The smallest node types (all of them, when several have that memory) whose usable bytes hold ``needed``.

    Args:
        needed: Bytes to hold (`needed_bytes`).
        family: Only this family (``"cache.r7g"``). Without it, data-tiering types are left out.
        reserved_memory_percent: As for `usable_bytes`.
        node_types: The capacity table.

    Returns:
        Names sorted alphabetically; empty when nothing is big enough (shard the data, or a bigger type).
    """
    fits = {
        name: gib for name, gib in node_types.items()
        if (node_family(name) == family if family else name not in DATA_TIERING_SSD_GIB)
        and usable_bytes(name, reserved_memory_percent, node_types=node_types) >= needed
    }
    if not fits:
        return []
    smallest = min(fits.values())
    return sorted(name for name, gib in fits.items() if gib == smallest)


def _fmt(n: float) -> str:
    """Bytes for people: ``21.4 MiB``, ``1.37 GiB``."""
    for unit, size in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{int(n):,} bytes"


def _suggestion(needed: int, node_type: str, reserved_memory_percent: float,
                node_types: Mapping[str, float]) -> str:
    same = smallest_fitting(needed, family=node_family(node_type), reserved_memory_percent=reserved_memory_percent,
                            node_types=node_types)
    overall = smallest_fitting(needed, reserved_memory_percent=reserved_memory_percent, node_types=node_types)
    parts = []
    if same:
        parts.append(f"smallest {node_family(node_type)} that fits: {same[0]} "
                     f"({_fmt(usable_bytes(same[0], reserved_memory_percent, node_types=node_types))} usable)")
    if overall and overall != same:
        parts.append(f"smallest overall: {', '.join(overall)} "
                     f"({_fmt(usable_bytes(overall[0], reserved_memory_percent, node_types=node_types))} usable)")
    if not parts:
        return "no single node type holds it: use cluster mode with several shards, or reduce the data first"
    return "; ".join(parts)


def size_findings(
    used_memory: int,
    node_type: str,
    *,
    reserved_memory_percent: float = 25,
    headroom: float = 0.3,
    dataset: int | None = None,
    source: str = "used_memory",
    node_types: Mapping[str, float] = NODE_TYPES,
) -> list[Finding]:
    """Whether ``used_memory`` plus ``headroom`` fits ``node_type``.

    Args:
        used_memory: The source's memory use in bytes (INFO memory ``used_memory`` or RDB aux ``used-mem``).
        node_type: The target's node type, e.g. ``"cache.r7g.large"``.
        reserved_memory_percent: The target parameter group's ``reserved-memory-percent`` (default 25).
        headroom: Growth margin on top of the data (0.3 = 30 %).
        dataset: ``used_memory_dataset`` when known (Redis ≥ 4), only to show.
        source: Where ``used_memory`` came from, named in the finding.
        node_types: The capacity table (GiB per node type); tests pass their own.

    Returns:
        One finding: block when data + headroom exceeds the usable memory (restore-failed, or no room to grow),
        warn above 80 % of it, info otherwise; a warn when the node type is not in the table.
    """
    needed = needed_bytes(used_memory, headroom)
    have = f"{source} {_fmt(used_memory)}" + (f" (dataset {_fmt(dataset)})" if dataset is not None else "")
    want = f"{have} + {headroom:.0%} headroom = {_fmt(needed)}"
    if node_type not in node_types:
        fit = smallest_fitting(needed, reserved_memory_percent=reserved_memory_percent, node_types=node_types)
        return [Finding(CHECK, "warn", f"node type {node_type} is not in the sizing table; the data needs {want}",
                        "check the type's memory on AWS's 'Supported node types' page"
                        + (f" (smallest known type that fits: {', '.join(fit)})" if fit else ""))]
    usable = usable_bytes(node_type, reserved_memory_percent, node_types=node_types)
    node = (f"the {_fmt(usable)} that {node_type} holds ({node_types[node_type]:g} GiB maxmemory less "
            f"{reserved_memory_percent:g}% reserved-memory-percent)")
    notes = []
    size = node_type.rsplit(".", 1)[-1]
    if node_family(node_type).startswith("cache.t") and size in ("micro", "small"):
        rec = 50 if size == "micro" else 30
        if reserved_memory_percent < rec:
            notes.append(f"AWS suggests reserved-memory-percent up to {rec}% on {size} nodes (they swap when full)")
    note = f" ({'; '.join(notes)})" if notes else ""
    # data tiering moves cold values to SSD, so memory + SSD is the hard limit (that ElastiCache restores an RDB
    # larger than memory onto such a node is inferred from the docs, not tested); memory alone is the soft one
    ssd = int(DATA_TIERING_SSD_GIB.get(node_type, 0) * GIB)
    capacity = usable + ssd
    on = f"{node} + {DATA_TIERING_SSD_GIB[node_type]:g} GiB SSD (data tiering)" if ssd else node
    todo = "set target.node_type — " + _suggestion(needed, node_type, reserved_memory_percent, node_types)
    if used_memory > capacity:
        return [Finding(CHECK, "block", f"the data does not fit: {have} is more than {on}{note}. ElastiCache would "
                        "end the restore in restore-failed (only delete-and-recreate fixes it)", todo)]
    if needed > capacity:
        return [Finding(CHECK, "block", f"no room to grow: {want} is more than {on}{note}; the data fits today "
                        f"but leaves {_fmt(capacity - used_memory)} free, less than the {headroom:.0%} headroom", todo)]
    fill = needed / usable if usable else math.inf
    if ssd and needed > usable:
        return [Finding(CHECK, "warn", f"{want} is more than {node}: the rest lives on the data-tiering SSD, "
                        "where every read of a cold value is an SSD read",
                        "fine when about 20% or less of the data is read regularly (AWS's guidance for data "
                        "tiering); otherwise " + todo.removeprefix("set target.node_type — "))]
    if fill > WARN_FILL:
        return [Finding(CHECK, "warn", f"{want} fills {fill:.0%} of {node}{note}",
                        "consider a bigger node: " + _suggestion(math.ceil(needed / WARN_FILL), node_type,
                                                                 reserved_memory_percent, node_types))]
    return [Finding(CHECK, "info", f"{want} fits: {fill:.0%} of {node}{note}")]


def memory_usage(info: Mapping[str, Any]) -> tuple[int, int | None]:
    """``(used_memory, used_memory_dataset)`` from ``INFO memory``; the dataset is None before Redis 4.0."""
    dataset = info.get("used_memory_dataset")
    return int(info["used_memory"]), (int(dataset) if dataset is not None else None)


def used_memory_from(r: redis.Redis) -> int:
    """The source's ``used_memory`` in bytes, from ``INFO memory`` on a live redis-py client.

    ``used_memory_dataset`` (Redis ≥ 4) is smaller — it leaves out the server's own overhead — but the new node
    carries overhead too, so sizing uses ``used_memory``; read both with `memory_usage` to show them.
    """
    return memory_usage(r.info("memory"))[0]


def used_memory_from_rdb_aux(aux: Mapping[Any, Any]) -> int | None:
    """The ``used-mem`` aux field of an RDB (Redis ≥ 3.2 writes it), in bytes; None when absent or not a number.

    Args:
        aux: The RDB's aux fields, e.g. ``elasticache_migrate.rdb.scan_rdb(path).aux`` (str or bytes keys and values).
    """
    for key in ("used-mem", b"used-mem"):
        if key in aux:
            value = aux[key]
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            try:
                n = int(str(value).strip())
            except ValueError:
                return None
            return n if n >= 0 else None
    return None
