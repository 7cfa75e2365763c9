"""Benchmark: the project's data path against the field reports' manual commands, verify speed, overhead.

    sudo .venv/bin/python -m benchmarks.run [--sizes 100 1024] [--skip-overhead]

Needs root (it starts a private Docker engine, as the tests do) and Debian's redis-server 7.0. For each
dataset size, on the same data in a Redis container (``--network host``) and moto's server as a separate
process on 127.0.0.1:

  (a) project, stream: bgsave-wait + extract-upload (one pass through the sink: local copy, CRC-64, S3 parts as
      windows of the copy, in parallel; the structure walk + verdict on the copy before the object is completed)
      project, staged: bgsave-wait + extract (to disk, CRC-64) + upload (the verdict on the copy, then multipart)
      project, sync: sync-upload (SYNC over the replication protocol, diskless, straight into the sink while the
      master writes the RDB; local copy and CRC-64 on the way, verdict before completing)
      project, sync-save-rules: the same on a source with ``save`` rules and a write since its last save: the
      master is asked for a disk-based SYNC (its BGSAVE, streamed once written) so no automatic save can void
      verify's proof (the dataset container itself has ``save ""``)
      Each path's time includes its verdict (it gates the object's completion); the detail says how long it took.
  (b) manual: BGSAVE + `until lastsave changes; sleep 1` polling, `docker cp`, boto3 ``upload_file`` with its
      defaults (what ``aws s3 cp`` does)
  (c) verify: every key compared (keys/s) against a target loaded from the same RDB, beside the time
      ``DEBUG DIGEST`` takes on each server (the server-side limit)
  (d) orchestration overhead: the whole rehearsal flow on a tiny dataset, minus the time its tasks ran

Each path runs in its own child process, so its peak RSS (ru_maxrss) is its own. Figures are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def _child(mode: str, args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one path in a child process; its JSON result plus its own peak RSS."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.paths", mode, json.dumps(args)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))  # the child reports its own peak RSS


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) // 1024
    return (f"{os.cpu_count()} cores ({cpu}), {mem / 1024:.0f} GiB RAM, {platform.platform()}, "
            f"Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1024], help="dataset sizes in MiB")
    ap.add_argument("--skip-overhead", action="store_true", help="skip (d)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmark starts a private Docker engine: run it as root", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    import boto3
    import redis

    from benchmarks.datasets import generate
    from elasticache_migrate.testing.docker_engine import build_redis_image, run_redis_container, start_engine
    from elasticache_migrate.testing.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="redis-migrate-bench-"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_HOME": str(work / "prefect"), "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    engine = start_engine(work / "docker")
    print(f"machine: {_machine()}")
    print(f"S3: moto's server (separate process) at {endpoint}; Docker: private dockerd, vfs, --network host\n")
    rows: list[str] = []
    try:
        client = engine.client()
        image = build_redis_image(client)
        s3 = None
        for _ in range(50):
            try:
                s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
                s3.list_buckets()
                break
            except Exception:  # noqa: BLE001 - moto still starting
                time.sleep(0.2)
        assert s3 is not None
        for size in args.sizes:
            port = free_port()
            name = f"bench-redis-{port}"
            run_redis_container(client, image, name=name, port=port, extra_args=["--save", "",
                                "--enable-debug-command", "yes"])
            r = redis.Redis(host="127.0.0.1", port=port, protocol=2)
            t0 = time.monotonic()
            counts = generate(r, size)
            print(f"--- {size} MiB dataset: {r.dbsize():,} keys ({counts}), generated in "
                  f"{time.monotonic() - t0:.0f}s")
            bucket = f"bench-{port}"
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
                {"ObjectOwnership": "BucketOwnerPreferred"}]})
            common = {"port": port, "container": name, "docker_host": engine.base_url, "endpoint": endpoint,
                      "bucket": bucket, "workdir": str(work / f"w{size}")}
            results = {}
            for mode in ("manual", "sync", "sync-save-rules", "stream", "staged"):  # staged last: verify reads its RDB
                shutil.rmtree(work / f"w{size}", ignore_errors=True)
                results[mode] = _child(mode, common, env)
                res = results[mode]
                print(f"{mode:15}: {res['seconds']:7.2f}s total  ({res['detail']})  {res['mb']:.0f} MB  "
                      f"{res['mb'] / res['seconds']:6.1f} MB/s  peak RSS {res['peak_rss_mb']:.0f} MB")
            for mode in ("stream", "staged", "sync", "sync-save-rules"):
                ratio = results[mode]["seconds"] / results["manual"]["seconds"]
                print(f"{mode} / manual = {ratio:.2f}x (target <= 0.60x)")
                rows.append(f"| {size} MiB | {mode} | {results[mode]['seconds']:.1f} s | {ratio:.2f}x | "
                            f"{results[mode]['mb'] / results[mode]['seconds']:.0f} MB/s | "
                            f"{results[mode]['peak_rss_mb']:.0f} MB |")
            rows.append(f"| {size} MiB | manual | {results['manual']['seconds']:.1f} s | 1.00x | "
                        f"{results['manual']['mb'] / results['manual']['seconds']:.0f} MB/s | "
                        f"{results['manual']['peak_rss_mb']:.0f} MB |")
            ver = _child("verify", {**common, "rdb": results["staged"]["rdb"]}, env)
            print(f"verify : {ver['keys']:,} keys in {ver['seconds']:.2f}s = {ver['keys_per_s']:,.0f} keys/s; "
                  f"DEBUG DIGEST source {ver['digest_source_s']:.2f}s, target {ver['digest_target_s']:.2f}s "
                  f"(sum {ver['digest_source_s'] + ver['digest_target_s']:.2f}s); verify / digests = "
                  f"{ver['seconds'] / (ver['digest_source_s'] + ver['digest_target_s']):.1f}x (target <= 5x, "
                  f">= 150k keys/s); peak RSS {ver['peak_rss_mb']:.0f} MB\n")
            rows.append(f"| {size} MiB | verify | {ver['seconds']:.1f} s | {ver['keys_per_s']:,.0f} keys/s | "
                        f"digests {ver['digest_source_s']:.2f}+{ver['digest_target_s']:.2f} s | "
                        f"{ver['peak_rss_mb']:.0f} MB |")
            client.containers.get(name).remove(force=True)
        if not args.skip_overhead:
            ov = _child("overhead", {"endpoint": endpoint, "workdir": str(work / "overhead")}, env)
            print(f"overhead: rehearsal flow on a tiny dataset ({ov['keys']} keys): {ov['seconds']:.1f}s wall, tasks "
                  f"ran {ov['task_seconds']:.1f}s, orchestration overhead {ov['overhead']:.1f}s (target <= 15 s)")
            rows.append(f"| tiny | whole flow | {ov['seconds']:.1f} s | overhead {ov['overhead']:.1f} s | | |")
        print("\n| dataset | path | time | ratio / rate | throughput | peak RSS |\n|---|---|---|---|---|---|")
        print("\n".join(rows))
        client.close()
    finally:
        engine.stop()
        moto.terminate()
        moto.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
