"""Benchmark: the cluster-mode preflight's whole-keyspace fingerprint scan (one SCAN pass, each key tested
against the known key shapes).

    .venv/bin/python -m benchmarks.cluster_scan [--keys 1000000]

Starts Debian's Redis 7.0 on 127.0.0.1, fills db0 with ``--keys`` unrelated keys (``DEBUG POPULATE``) plus a
namespaced Sidekiq and a BullMQ queue under a custom prefix, then times `cluster_mode_findings` (what preflight runs
for a cluster-mode target) and checks both apps were found. Prints the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from elasticache_migrate.preflight.cluster_safety import KEY_SHAPES, SCAN_COUNT, cluster_mode_findings
from elasticache_migrate.testing.binaries import find_binary
from elasticache_migrate.testing.localredis import LocalRedisServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000, help="unrelated keys in db0")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        srv = LocalRedisServer(find_binary("redis-7.0"), workdir=Path(work),
                               config={"save": "", "enable-debug-command": "local"}).start()
        try:
            r = srv.client()
            t0 = time.monotonic()
            r.execute_command("DEBUG", "POPULATE", args.keys, "cache:page", 16)
            r.sadd("myapp:queues", "default")
            r.lpush("myapp:queue:default", "{}")
            r.incr("myapp:stat:processed")
            for suffix in ("id", "meta", "events", "wait"):
                r.set(f"jobs:email:{suffix}", "1")
            filled = time.monotonic() - t0
            t0 = time.monotonic()
            findings = cluster_mode_findings(r)
            took = time.monotonic() - t0
            found = {f.seen.split(":")[0] for f in findings if f.severity == "block"}
            print(f"{r.dbsize():,} keys (filled in {filled:.1f} s); cluster_mode_findings: {took:.2f} s for "
                  f"{len(KEY_SHAPES)} key shapes in one SCAN pass (COUNT {SCAN_COUNT}); blocks: {sorted(found)}")
            assert {"Sidekiq keys", "Bull/BullMQ queue(s) without a hash tag"} <= found, findings
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
