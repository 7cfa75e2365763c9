"""A realistic sample dataset for rehearsals, tests and benchmarks.

What an app's Redis typically holds: web sessions with TTLs, a Sidekiq-style job queue (list + scheduled
zset + retry set + stats), a cache of strings with TTLs, counters, hashes, sets, sorted sets, streams
with a consumer group, and a second database. Written with commands every Redis since 3.0 accepts
(HMSET, not multi-field HSET); streams only where the server has them (5.0+).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from elasticache_migrate.source.connection import server_info

__all__ = ["SampleStats", "load_sample"]


@dataclass
class SampleStats:
    """What was written, per db."""

    keys: dict[int, int]
    streams: bool


def load_sample(r: Any, scale: int = 1, seed: int = 7, db1: Any = None) -> SampleStats:
    """Write the sample dataset with ``r`` (db 0) and ``db1`` (a client on db 1, optional).

    Args:
        r: redis-py client on db 0 (protocol=2 works with every version).
        scale: multiplies the number of keys (scale 1 ≈ 1,200 keys).
        seed: random seed, so runs are repeatable.
        db1: client on db 1; when given, a few keys go there too.
    """
    rnd = random.Random(seed)
    version = server_info(r).version
    p = r.pipeline(transaction=False)
    for i in range(200 * scale):  # web sessions, 30 min TTL
        sid = f"session:{rnd.getrandbits(64):016x}"
        p.execute_command("HMSET", sid, "user_id", str(rnd.randint(1, 10**6)), "csrf", f"{rnd.getrandbits(128):032x}",
                          "cart", json.dumps([rnd.randint(1, 999) for _ in range(rnd.randint(0, 5))]))
        p.expire(sid, 1800 + i)
    for q in ("default", "mailers", "critical"):  # Sidekiq-style queues
        jobs = [json.dumps({"class": "HardWorker", "args": [rnd.randint(1, 99)], "jid": f"{rnd.getrandbits(96):024x}",
                            "queue": q}) for _ in range(50 * scale)]
        p.rpush(f"queue:{q}", *jobs)
    p.sadd("queues", "default", "mailers", "critical")
    for name in ("schedule", "retry"):
        p.execute_command("ZADD", name, *[x for j in range(40 * scale) for x in
                                         (1.7e9 + j * 60, json.dumps({"class": "LaterWorker", "jid": f"{name}{j}"}))])
    p.set("stat:processed", 123456)
    p.set("stat:failed", 42)
    for i in range(500 * scale):  # page cache with TTLs, some compressible
        p.set(f"cache:page:{i}", ("<html>" + "lorem ipsum " * rnd.randint(1, 200) + "</html>"), ex=3600 + i)
    for i in range(100 * scale):
        p.incrby(f"counter:{i}", rnd.randint(1, 10**9))
    for i in range(50 * scale):
        p.execute_command("HMSET", f"user:{i}", "name", f"user{i}", "email", f"user{i}@example.com",
                          "plan", rnd.choice(["free", "pro"]))
        p.sadd(f"user:{i}:roles", *rnd.sample(["admin", "editor", "viewer", "billing"], 2))
    p.execute_command("ZADD", "leaderboard", *[x for i in range(300 * scale) for x in (rnd.randint(0, 10**6), f"p{i}")])
    p.sadd("tags:numbers", *range(100))  # intset
    p.execute_command("HMSET", "big:hash", *[x for i in range(1000) for x in (f"f{i}", f"v{i}" * 3)])
    p.rpush("big:list", *[f"item-{i}" for i in range(2000)])
    p.set("bin:blob", bytes(range(256)) * 4)
    p.execute()
    streams = version >= (5, 0, 0)
    if streams:
        for i in range(100 * scale):
            r.xadd("events", {"type": rnd.choice(["click", "view"]), "n": str(i)}, id=f"{1700000000000 + i}-0")
        r.xgroup_create("events", "workers", id="0")
        r.xreadgroup("workers", "w1", {"events": ">"}, count=10)
    counts = {0: int(r.dbsize())}
    if db1 is not None:
        p1 = db1.pipeline(transaction=False)
        for i in range(20 * scale):
            p1.set(f"legacy:{i}", f"value-{i}")
        p1.execute()
        counts[1] = int(db1.dbsize())
    return SampleStats(keys=counts, streams=streams)
