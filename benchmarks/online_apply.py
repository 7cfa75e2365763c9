"""Benchmark: the online applier's throughput (issue 13 item 2) — a real replication stream, parsed, planned and
applied to a fresh target.

    .venv/bin/python -m benchmarks.online_apply [--commands 50000] [--source redis-3.2]

Starts a source (``--source``) and a Redis 7.0 target on 127.0.0.1, records the source's stream with a raw
``PSYNC ? -1`` reader while it takes ``--commands`` rounds of SET/INCR/HSET/EXPIRE plus MULTI/EXEC pairs, then
times parse+plan (:class:`StreamUnits`) and apply (:class:`Applier`) separately, checks the target reached the
source's offset and key count, and prints commands/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from elasticache_migrate.online.apply import Applier
from elasticache_migrate.online.stream import TargetCaps, units
from elasticache_migrate.testing.binaries import find_binary
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.support.replstream import StreamCapture


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=50_000, help="rounds of SET/INCR/HSET/EXPIRE")
    ap.add_argument("--source", default="redis-7.0", help="source binary (redis-3.2, redis-6.2, redis-7.0)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        src = LocalRedisServer(find_binary(args.source), workdir=Path(work) / "s").start()
        tgt = LocalRedisServer(find_binary("redis-7.0"), workdir=Path(work) / "t").start()
        try:
            r, t = src.client(), tgt.client()
            cap = StreamCapture(src.host, src.port)
            with r.pipeline(transaction=False) as p:
                for i in range(args.commands):
                    p.set(f"k{i}", "x" * 32)
                    p.incr("c")
                    p.hset("h", f"f{i % 1000}", i)
                    p.expire(f"k{i}", 3600)
                    if i % 1000 == 999:
                        p.execute()
                p.execute()
            for i in range(args.commands // 25):
                with r.pipeline(transaction=True) as p:
                    p.incr("m")
                    p.lpush("l", i)
                    p.execute()
            end = int(r.info("replication")["master_repl_offset"])
            cap.wait_for(end, 120)
            cap.stop()
            version = tuple(int(x) for x in str(r.info("server")["redis_version"]).split(".")[:2])
            t0 = time.perf_counter()
            planned = list(units(cap.chunks, cap.start_offset, TargetCaps(version, (7, 0))))
            t1 = time.perf_counter()
            applier = Applier(t, cap.start_offset)
            progress = applier.apply(planned)
            t2 = time.perf_counter()
            applier.close()
            n = sum(len(u.ops) for u in planned)
            mb = sum(len(c) for c, _ in cap.chunks) / 1e6
            ok = progress.applied_offset == end and r.dbsize() == t.dbsize()
            print(f"{args.source} source -> redis 7.0 target: {mb:.1f} MB of stream, {len(planned)} units, "
                  f"{n} commands")
            print(f"  parse+plan: {n / (t1 - t0):,.0f} commands/s   apply: {n / (t2 - t1):,.0f} commands/s   "
                  f"target at the source's offset and key count: {ok}")
            return 0 if ok else 1
        finally:
            src.stop()
            tgt.stop()


if __name__ == "__main__":
    raise SystemExit(main())
