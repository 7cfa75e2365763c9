"""Realistic benchmark datasets: many small keys and a few large ones, incompressible values.

About 70 % of the bytes are in small keys (strings of 64–1,024 bytes, 5-field hashes, small sets, counters),
30 % in a few large collections (hashes and sets of 20k members, lists of 20k entries, sorted sets, streams).
Values come from a seeded PRNG, so the RDB's LZF compression cannot shrink them: the file on disk is about
the size asked for.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["generate"]

MiB = 1 << 20


def _blob(rnd: random.Random, n: int) -> bytes:
    return rnd.randbytes(n)


def generate(r: Any, size_mb: int, seed: int = 1) -> dict[str, int]:
    """Fill db 0 of ``r`` with about ``size_mb`` MiB of data; returns counts by kind."""
    rnd = random.Random(seed)
    budget_small = int(size_mb * MiB * 0.7)
    budget_large = int(size_mb * MiB * 0.3)
    counts = {"strings": 0, "hashes": 0, "sets": 0, "counters": 0, "large": 0}
    written = 0
    i = 0
    p = r.pipeline(transaction=False)
    while written < budget_small:
        kind = i % 10
        if kind < 6:
            n = rnd.randint(64, 1024)
            p.set(f"cache:{i}", _blob(rnd, n), ex=86400 if kind == 0 else None)
            counts["strings"] += 1
        elif kind < 8:
            fields = {f"f{j}": _blob(rnd, 40) for j in range(5)}
            p.hset(f"user:{i}", mapping=fields)
            n = 5 * 42
            counts["hashes"] += 1
        elif kind < 9:
            p.sadd(f"tags:{i}", *[_blob(rnd, 16) for _ in range(6)])
            n = 6 * 16
            counts["sets"] += 1
        else:
            p.set(f"counter:{i}", rnd.randint(0, 10**12))
            n = 16
            counts["counters"] += 1
        written += n + 20
        i += 1
        if i % 5000 == 0:
            p.execute()
    p.execute()
    big = 0
    while big < budget_large:
        j = counts["large"]
        kind = j % 5
        members = 20_000
        if kind == 0:
            for start in range(0, members, 5000):
                p.hset(f"big:hash:{j}", mapping={f"field:{k}": _blob(rnd, 48) for k in range(start, start + 5000)})
        elif kind == 1:
            for _ in range(0, members, 5000):
                p.sadd(f"big:set:{j}", *[_blob(rnd, 32) for _ in range(5000)])
        elif kind == 2:
            for _ in range(0, members, 5000):
                p.rpush(f"big:list:{j}", *[_blob(rnd, 48) for _ in range(5000)])
        elif kind == 3:
            for start in range(0, members, 5000):
                p.zadd(f"big:zset:{j}", {_blob(rnd, 32): float(k) for k in range(start, start + 5000)})
        else:
            for k in range(members // 4):
                p.xadd(f"big:stream:{j}", {"payload": _blob(rnd, 64)}, id=f"{k + 1}-0")
        p.execute()
        big += members * 50 if kind != 4 else members // 4 * 80
        counts["large"] += 1
    return counts
