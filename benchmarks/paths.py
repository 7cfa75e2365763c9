"""One measured path per child process (see benchmarks/run.py): prints one JSON line with its figures."""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _plan(a: dict[str, Any], **over: Any) -> Any:
    from elasticache_migrate.plan import validate_plan

    data = {
        "migration_id": over.pop("migration_id", f"bench-{a.get('port', 0)}"),
        "aws": {"region": "us-east-1", "endpoint_url": a["endpoint"]},
        "source": {"kind": "docker", "container": a.get("container", "x"), "docker_host": a.get("docker_host"),
                   "redis": {"host": "127.0.0.1", "port": a.get("port", 6379)}},
        "staging": {"bucket": a.get("bucket", "bench"), "workdir": a["workdir"]},
        "target": {"kind": "rehearsal", "replication_group_id": "bench", "engine": "redis", "engine_version": "7.0"},
        "approval": {"enabled": False},
    }
    data.update(over)
    return validate_plan(data)


def _bgsave_poll_like_a_shell(r: Any) -> float:
    """BGSAVE, then `until [ "$(redis-cli lastsave)" != "$before" ]; do sleep 1; done`."""
    t0 = time.monotonic()
    before = r.lastsave()
    r.execute_command("BGSAVE")
    while r.lastsave() == before:
        time.sleep(1)
    return time.monotonic() - t0


def manual(a: dict[str, Any]) -> dict[str, Any]:
    import boto3
    import redis

    r = redis.Redis(host="127.0.0.1", port=a["port"], protocol=2)
    work = Path(a["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    t_save = _bgsave_poll_like_a_shell(r)
    t1 = time.monotonic()
    subprocess.run(["docker", "-H", a["docker_host"], "cp", f"{a['container']}:/data/dump.rdb", str(work / "dump.rdb")],
                   check=True, capture_output=True)
    t2 = time.monotonic()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=a["endpoint"])
    s3.upload_file(str(work / "dump.rdb"), a["bucket"], "manual/dump.rdb")  # boto3's defaults, as aws s3 cp
    t3 = time.monotonic()
    size = (work / "dump.rdb").stat().st_size
    return {"seconds": t3 - t0, "mb": size / MiB, "peak_rss_mb": _rss_mb(),
            "detail": f"BGSAVE+poll {t_save:.2f}s, docker cp {t2 - t1:.2f}s, upload_file {t3 - t2:.2f}s"}


def _timed_verdict() -> dict[str, float]:
    """Time the verdict (structure walk + engine) the sink runs on the local copy before it completes the upload."""
    import elasticache_migrate.staging.verdict as verdict

    seen = {"walk": 0.0}
    real = verdict.snapshot_verdict

    def timed(*args: Any, **kw: Any) -> Any:
        t = time.monotonic()
        try:
            return real(*args, **kw)
        finally:
            seen["walk"] += time.monotonic() - t

    verdict.snapshot_verdict = timed  # type: ignore[assignment]
    return seen


def _project(a: dict[str, Any], transfer: str) -> dict[str, Any]:
    from elasticache_migrate.log import logger
    from elasticache_migrate.source.connection import source_client
    from elasticache_migrate.source.snapshot import bgsave
    from elasticache_migrate.staging.extract import extract_and_upload, extract_copy
    from elasticache_migrate.staging.upload import upload_checked_copy

    plan = _plan(a, migration_id=f"bench-{transfer}-{a['port']}", staging={
        "bucket": a["bucket"], "workdir": a["workdir"], "transfer": transfer})
    seen = _timed_verdict()
    t0 = time.monotonic()
    bgsave(source_client(plan), 3600, logger)
    t1 = time.monotonic()
    if transfer == "stream":
        ex, _staged = extract_and_upload(plan)
        t2 = t3 = time.monotonic()
        detail = f"bgsave-wait {t1 - t0:.2f}s, extract+CRC+upload in one pass {t2 - t1:.2f}s"
    else:
        ex = extract_copy(plan)
        t2 = time.monotonic()
        upload_checked_copy(plan, ex)
        t3 = time.monotonic()
        detail = (f"bgsave-wait {t1 - t0:.2f}s, extract+CRC {t2 - t1:.2f}s, upload (the verdict, then the parts) "
                  f"{t3 - t2:.2f}s")
    walk = seen["walk"]
    return {"seconds": t3 - t0, "mb": ex.size / MiB, "peak_rss_mb": _rss_mb(), "rdb": ex.path, "walk": walk,
            "detail": f"{detail}; inside it the structure walk + verdict before completing: {walk:.2f}s, "
                      f"{t3 - t0 - walk:.2f}s without"}


def _sync(a: dict[str, Any], save_rules: bool) -> dict[str, Any]:
    """The sync transfer: SYNC straight into the multipart upload.

    The dataset container has ``save ""``: the master streams diskless (its delay set to 0 meanwhile).
    ``save_rules``: the source gets ``save 3600 1`` and a write since its last save, as a source with the default
    ``save`` config and recent writes has; then the master is asked for a disk-based SYNC (its own BGSAVE,
    streamed once written), so no automatic save can void verify's proof (elasticache_migrate.source.replication).
    """
    import redis

    import elasticache_migrate.staging.sync as sync

    plan = _plan(a, migration_id=f"bench-sync-{a['port']}", staging={
        "bucket": a["bucket"], "workdir": a["workdir"], "transfer": "sync"})
    r = redis.Redis(host="127.0.0.1", port=a["port"], protocol=2)
    if save_rules:
        r.config_set("save", "3600 1")
        r.set("bench:dirty", "1")
    seen: dict[str, Any] = {}
    walked = _timed_verdict()
    real = sync.stream_upload  # type: ignore[attr-defined]  # sync's own import of the sink's pass, timed here

    def timed(*args: Any, **kw: Any) -> Any:  # the pass itself, and what the master's stream says of its timing
        seen["start"] = time.monotonic()
        try:
            return real(*args, **kw)
        finally:
            seen["end"], seen["stream"] = time.monotonic(), args[1]

    setattr(sync, "stream_upload", timed)  # noqa: B010 - the name sync's code looks up at call time
    try:
        t0 = time.monotonic()
        _snap, ex, _staged = sync.sync_and_upload(plan)
        t3 = time.monotonic()
    finally:
        setattr(sync, "stream_upload", real)  # noqa: B010
        if save_rules:
            r.config_set("save", "")
            r.delete("bench:dirty")  # the same keyspace for verify (compared with the staged path's RDB)
    st = seen["stream"]
    first = st.first_byte_s or 0.0
    payload = st.seconds - first
    walk = walked["walk"]
    detail = (f"{st.reply.framing}: set-up {seen['start'] - t0 - first:.2f}s, "
              f"{'BGSAVE' if st.reply.framing == 'disk' else 'fork'} until the payload starts {first:.2f}s, payload "
              f"read while uploading {payload:.2f}s, upload tail {seen['end'] - seen['start'] - payload:.2f}s "
              f"(the structure walk + verdict before completing: {walk:.2f}s, inside it), record "
              f"{t3 - seen['end']:.2f}s; {t3 - t0 - walk:.2f}s without the walk")
    return {"seconds": t3 - t0, "mb": ex.size / MiB, "peak_rss_mb": _rss_mb(), "rdb": ex.path, "walk": walk,
            "detail": detail}


def sync(a: dict[str, Any]) -> dict[str, Any]:
    return _sync(a, save_rules=False)


def sync_save_rules(a: dict[str, Any]) -> dict[str, Any]:
    return _sync(a, save_rules=True)


def stream(a: dict[str, Any]) -> dict[str, Any]:
    return _project(a, "stream")


def staged(a: dict[str, Any]) -> dict[str, Any]:
    return _project(a, "staged")


def verify(a: dict[str, Any]) -> dict[str, Any]:
    import shutil

    from elasticache_migrate.source.connection import Endpoint
    from elasticache_migrate.testing.binaries import find_binary
    from elasticache_migrate.testing.localredis import LocalRedisServer
    from elasticache_migrate.verify.run import verify_endpoints

    home = Path(a["workdir"]) / "target"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(a["rdb"], home / "dump.rdb")
    target = LocalRedisServer(find_binary("redis-7.0"), workdir=home,
                              config={"save": "", "enable-debug-command": "yes"}).start(timeout=600)
    try:
        plan = _plan(a, verify={"batch_size": 1000})
        t0 = time.monotonic()
        report = verify_endpoints(plan, Endpoint("127.0.0.1", target.port))
        secs = time.monotonic() - t0
        assert report.ok, report.mismatches[:3]
        import redis

        src = redis.Redis(host="127.0.0.1", port=a["port"], protocol=2, socket_timeout=600)
        t1 = time.monotonic()
        d1 = src.execute_command("DEBUG", "DIGEST")
        t2 = time.monotonic()
        d2 = target.client(socket_timeout=600).execute_command("DEBUG", "DIGEST")
        t3 = time.monotonic()
        assert d1 == d2, "DEBUG DIGEST differs"
        return {"seconds": secs, "keys": report.keys_checked, "keys_per_s": report.keys_checked / secs,
                "digest_source_s": t2 - t1, "digest_target_s": t3 - t2, "peak_rss_mb": _rss_mb()}
    finally:
        target.stop()


def overhead(a: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from elasticache_migrate.testing.binaries import find_binary
    from elasticache_migrate.testing.localredis import LocalRedisServer
    from elasticache_migrate.testing.sample_data import load_sample
    from flows.migrate import migrate_redis

    work = Path(a["workdir"])
    src = LocalRedisServer(find_binary("redis-7.0"), workdir=work / "src").start()
    try:
        r = src.client()
        load_sample(r)
        keys = r.dbsize()
        r.close()
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=a["endpoint"])
        s3.create_bucket(Bucket="bench-overhead")
        plan = _plan({**a, "port": src.port}, migration_id="bench-overhead",
                     source={"kind": "host", "redis": {"host": "127.0.0.1", "port": src.port}},
                     staging={"bucket": "bench-overhead", "workdir": str(work / "staging")})
        t0 = time.monotonic()
        state = migrate_redis(plan, return_state=True)
        wall = time.monotonic() - t0
        assert state.is_completed(), state.message
        with get_client(sync_client=True) as c:
            runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[
                state.state_details.flow_run_id])))
        task_s = sum(t.total_run_time.total_seconds() for t in runs)
        from elasticache_migrate.targets.rehearsal import stop_rehearsal_target

        stop_rehearsal_target(plan.workdir)
        return {"seconds": wall, "task_seconds": task_s, "overhead": wall - task_s, "keys": keys,
                "peak_rss_mb": _rss_mb()}
    finally:
        src.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()[mode.replace("-", "_")](args), default=str))
