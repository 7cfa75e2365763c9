"""The flow's other paths, each ending in a state a user can check: rejection, rollback, bad input, old sources.

Real redis-server processes, moto's server for S3/SSM, a Prefect test server, and (for the Docker source)
a private Docker engine with a locally built Redis image.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from elasticache_migrate.errors import ExtractError, PreflightError, VerificationError
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.connection import Endpoint, redis_client
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.docker_engine import run_redis_container
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.sample_data import load_sample
from elasticache_migrate.verify.run import verify_endpoints
from flows.migrate import migrate_redis
from tasks.approval import resume_run, wait_for_paused_run
from tests.conftest import free_port, make_plan, need
from tests.support.outcomes import migrated, rehearsal_target
from tests.support.prefect_server import settled_task_runs

pytestmark = pytest.mark.usefixtures("prefect_server")


def _decide(decision: str, approver: str = "alice", note: str = "", before: Any = None) -> threading.Thread:
    """Answer the approval pause from another thread (optionally doing something first)."""
    def run() -> None:
        run_id = wait_for_paused_run(timeout=120)
        if before:
            before()
        resume_run(run_id, decision, approver, note)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _writable(r: redis.Redis) -> bool:
    """Whether the server accepts a write right now (a paused server blocks: time out fast)."""
    try:
        r.set("probe:writable", "1")
        return True
    except (redis.ResponseError, redis.TimeoutError):
        return False


def _loaded(server: LocalRedisServer) -> dict[int, int]:
    r, r1 = server.client(), server.client(db=1)
    stats = load_sample(r, db1=r1)
    r.close()
    r1.close()
    return stats.keys


def test_docker_source_migrated_to_rehearsal_with_ssm_switched(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                               docker_engine: Any, redis_image: str) -> None:
    """(a) Redis in a container (RDB in a non-default dir): every key equal on the target, SSM switched."""
    import boto3

    client = docker_engine.client()
    port = free_port()
    container = run_redis_container(client, redis_image, name=f"app-redis-{port}", port=port, dir="/var/lib/redis",
                                    dbfilename="cache.rdb")
    src = redis_client("127.0.0.1", port)
    expected = load_sample(src, db1=redis_client("127.0.0.1", port, db=1)).keys
    redis_client("127.0.0.1", port).connection_pool.disconnect()
    src.close()
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=moto_endpoint)
    ssm.put_parameter(Name=f"/app/{port}/redis_url", Value=f"redis://10.0.0.5:{port}/0", Type="SecureString")
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=port,
                     source={"kind": "docker", "container": container.name, "docker_host": docker_engine.base_url,
                             "redis": {"host": "127.0.0.1", "port": port}},
                     cutover={"backend": "ssm", "ssm_parameter": f"/app/{port}/redis_url"})
    try:
        result = migrated(migrate_redis(plan))
        ep_port = result.endpoint.port
        target = redis_client("127.0.0.1", ep_port)
        assert target.dbsize() == expected[0]
        assert redis_client("127.0.0.1", ep_port, db=1).dbsize() == expected[1]
        # every key equal, checked again here independently of the flow's own verify step
        report = verify_endpoints(plan, Endpoint("127.0.0.1", ep_port))
        assert report.ok and report.keys_checked == sum(expected.values())
        assert (result.rdb.magic, result.rdb.rdb_version) == ("REDIS", 10)
        p = ssm.get_parameter(Name=f"/app/{port}/redis_url", WithDecryption=True)["Parameter"]
        assert p["Value"] == f"redis://127.0.0.1:{ep_port}/0" and p["Type"] == "SecureString"
    finally:
        stop_rehearsal_target(plan.workdir)
        container.remove(force=True)
        client.close()


def test_rejected_approval_unpauses_source_and_leaves_config(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                             source: LocalRedisServer, app_env: Path) -> None:
    """(b) A rejection: the run ends Cancelled saying why, the source takes writes, the config is untouched."""
    _loaded(source)
    before = app_env.read_bytes()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 120})
    probe = redis_client("127.0.0.1", source.port, timeout=1)
    seen_paused: list[bool] = []
    decider = _decide("reject", "bob", "window moved", before=lambda: seen_paused.append(not _writable(probe)))
    try:
        state = migrate_redis(plan, return_state=True)
        decider.join(5)
        assert seen_paused == [True]                   # writes were paused while waiting for a decision
        assert state.is_cancelled()
        assert "rejected by bob: window moved" in (state.message or "")
        assert _writable(probe)                        # the source accepts writes again
        assert app_env.read_bytes() == before          # config byte-for-byte unchanged
    finally:
        stop_rehearsal_target(plan.workdir)


def test_failed_check_after_switch_restores_config(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                   source: LocalRedisServer, app_env: Path) -> None:
    """(c) The target loses its data during the approval wait: the post-switch verify fails and rolls back."""
    _loaded(source)
    before = app_env.read_bytes()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 120})

    def flush_target() -> None:

        port = rehearsal_target(plan).port
        redis_client("127.0.0.1", port).flushall()

    decider = _decide("approve", before=flush_target)
    try:
        state = migrate_redis(plan, return_state=True)
        decider.join(5)
        assert state.is_failed()
        with pytest.raises(VerificationError, match="no longer holds the verified data"):
            state.result()
        assert app_env.read_bytes() == before          # switched, then restored by the flow's rollback
        assert _writable(redis_client("127.0.0.1", source.port, timeout=1))
    finally:
        stop_rehearsal_target(plan.workdir)


def test_failed_verify_cutover_is_rolled_back_by_restore_config_alone(tmp_path: Path, moto_endpoint: str,
                                                                      bucket: str, source: LocalRedisServer,
                                                                      app_env: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """One rollback path for the config: when verify-cutover fails, the flow's rollback runs the restore-config
    task once, and it is the only thing that writes the config back (no transaction hook, no second restore)."""
    from prefect.context import TaskRunContext

    from elasticache_migrate.cutover.dotenv import DotenvFile
    from elasticache_migrate.journal import Journal

    writes: list[tuple[str | None, str | None]] = []   # (task that wrote, value written)
    original = DotenvFile.write

    def recorded(self: DotenvFile, value: str | None) -> None:
        ctx = TaskRunContext.get()
        writes.append((ctx.task.name if ctx else None, value))
        original(self, value)

    monkeypatch.setattr(DotenvFile, "write", recorded)
    _loaded(source)
    before = app_env.read_bytes()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 120})

    def flush_target() -> None:
        port = rehearsal_target(plan).port
        redis_client("127.0.0.1", port).flushall()

    decider = _decide("approve", before=flush_target)
    try:
        state = migrate_redis(plan, return_state=True)
        decider.join(5)
        assert state.is_failed()
        with pytest.raises(VerificationError, match="no longer holds the verified data"):
            state.result()
        assert app_env.read_bytes() == before
        assert [task for task, _value in writes] == ["switch-config", "restore-config"]  # restored exactly once
        assert writes[1][1] == "redis://old-redis:6379/0"
        assert Journal(plan.workdir).read().cutover is None                    # nothing left to restore
        runs = settled_task_runs(state.state_details.flow_run_id)
        names = [t.name.rsplit("-", 1)[0] for t in runs]
        restores = [t for t in runs if t.name.rsplit("-", 1)[0] == "restore-config"]
        assert names.count("verify-cutover") == 1 and names.count("switch-config") == 1
        assert len(restores) == 1 and restores[0].state is not None and restores[0].state.is_completed()
        assert restores[0].run_count == 1                                      # not retried either
    finally:
        stop_rehearsal_target(plan.workdir)


def test_verify_names_mismatches_between_real_servers(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                      redis70: Any) -> None:
    """verify compares type, value and TTL: each kind of difference is found and named."""
    a = LocalRedisServer(redis70, workdir=tmp_path / "a").start()
    b = LocalRedisServer(redis70, workdir=tmp_path / "b").start()
    try:
        ra, rb = a.client(), b.client()
        for r in (ra, rb):
            r.set("same", "1")
            r.rpush("list", "x", "y")
            r.set("ttl", "v", ex=1000)
        ra.set("value", "a")
        rb.set("value", "b")
        ra.set("type", "s")
        rb.rpush("type", "s")
        ra.set("missing", "1")
        rb.set("extra", "1")
        rb.expire("ttl", 10)
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=a.port)
        from elasticache_migrate.source.connection import Endpoint

        report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port))
        kinds = {m.key: m.kind for m in report.mismatches}
        assert kinds == {"value": "value", "type": "type", "missing": "missing", "ttl": "ttl", "extra": "extra"}
    finally:
        a.stop()
        b.stop()


def test_missing_container_is_refused_before_any_change(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                       source: LocalRedisServer, docker_engine: Any, s3: Any) -> None:
    """(d) A container that does not exist: preflight names it and nothing is paused or uploaded."""
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     source={"kind": "docker", "container": "no-such-redis", "docker_host": docker_engine.base_url,
                             "redis": {"host": "127.0.0.1", "port": source.port}})
    state = migrate_redis(plan, return_state=True)
    with pytest.raises(PreflightError) as err:
        state.result()
    assert "no container named 'no-such-redis'" in str(err.value) and "docker ps -a" in str(err.value)
    assert _writable(redis_client("127.0.0.1", source.port, timeout=1))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_missing_bucket_is_refused_before_any_change(tmp_path: Path, moto_endpoint: str, source: LocalRedisServer,
                                                     app_env: Path) -> None:
    """(d) A bucket that does not exist: preflight names the remedy; the source was never paused."""
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket="no-such-bucket-here",
                     source_port=source.port, cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    before = app_env.read_bytes()
    state = migrate_redis(plan, return_state=True)
    with pytest.raises(PreflightError) as err:
        state.result()
    assert "s3://no-such-bucket-here does not exist" in str(err.value) and "create it in us-east-1" in str(err.value)
    assert _writable(redis_client("127.0.0.1", source.port, timeout=1))
    assert app_env.read_bytes() == before


def test_non_rdb_file_is_refused_and_the_source_released(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                         source: LocalRedisServer, s3: Any) -> None:
    """(d) rdb_path pointing at an AOF, not an RDB: preflight reads the file and refuses it, naming what it is,
    before the source is paused; nothing is uploaded."""
    bogus = tmp_path / "appendonly.aof"
    bogus.write_bytes(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     source={"kind": "host", "rdb_path": str(bogus),
                             "redis": {"host": "127.0.0.1", "port": source.port}})
    state = migrate_redis(plan, return_state=True)
    with pytest.raises(PreflightError) as err:
        state.result()
    assert "not an RDB file" in str(err.value) and "AOF" in str(err.value)
    assert _writable(redis_client("127.0.0.1", source.port, timeout=1))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_extract_refuses_a_non_rdb_stream_before_writing_it(tmp_path: Path) -> None:
    """The extract step's own check (a file replaced after preflight): nothing is left on disk."""
    from elasticache_migrate.staging.sink import write_checked

    dest = tmp_path / "dump.rdb"
    with pytest.raises(ExtractError, match="is not an RDB file") as err:
        write_checked(iter([b"\x1f\x8b\x08\x00" + bytes(100)]), dest, "host:/backups/dump.rdb.gz")
    assert "gzip" in str(err.value) and "source.rdb_path" in err.value.remedy
    assert not dest.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("old,target,engine", [("redis-3.2", "redis-7.0", ("redis", "7.0")),
                                                ("redis-3.0", "valkey-8.1", ("valkey", "8.1"))])
def test_redis3_source_migrates_to_newer_target(tmp_path: Path, moto_endpoint: str, bucket: str, old: str,
                                                target: str, engine: tuple[str, str]) -> None:
    """(f) The field reports ran Redis 3: no CLIENT PAUSE WRITE, no HELLO. Every key arrives equal."""
    binary = need(old)
    need(target)
    srv = LocalRedisServer(binary, workdir=tmp_path / "old").start()
    try:
        expected = _loaded(srv)
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=srv.port,
                         target={"kind": "rehearsal", "replication_group_id": "app-cache", "engine": engine[0],
                                 "engine_version": engine[1], "rehearsal_binary": target},
                         approval={"enabled": True, "timeout_seconds": 120})
        probe = redis_client("127.0.0.1", srv.port, timeout=1)
        refused: list[bool] = []
        decider = _decide("approve", before=lambda: refused.append(not _writable(probe)))
        result = migrated(migrate_redis(plan))
        decider.join(5)
        assert refused == [True]   # writes refused (NOREPLICAS) while the snapshot was current
        assert result.keys_verified == sum(expected.values())
        assert (result.rdb.magic, result.rdb.rdb_version) in {("REDIS", 6), ("REDIS", 7)}
        assert config_get(probe, "min-slaves-to-write") == "1000000"
    finally:
        stop_rehearsal_target(plan.workdir)
        srv.stop()


def test_approval_timeout_rolls_back_and_says_why(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                  source: LocalRedisServer, app_env: Path) -> None:
    """Nobody answers: the run fails saying so, the source takes writes again, the config is untouched."""
    _loaded(source)
    before = app_env.read_bytes()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 10})
    try:
        state = migrate_redis(plan, return_state=True)
        assert state.is_failed()
        assert "no approval within 10s" in (state.message or "")
        assert _writable(redis_client("127.0.0.1", source.port, timeout=1))
        assert app_env.read_bytes() == before
    finally:
        stop_rehearsal_target(plan.workdir)


def test_source_password_never_reaches_logs_or_parameters(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                          redis70: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The password lives in the worker's environment; the plan, the run's parameters and its logs never hold it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    secret = "s3cr3t-Pa55-" + tmp_path.name[-6:]
    monkeypatch.setenv("SRC_REDIS_PW", secret)
    srv = LocalRedisServer(redis70, workdir=tmp_path / "pw", password=secret).start()
    try:
        r = srv.client()
        r.set("k", "v")
        r.close()
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=srv.port,
                         source={"kind": "host", "redis": {"host": "127.0.0.1", "port": srv.port,
                                                           "password_secret": "env:SRC_REDIS_PW"}})
        state = migrate_redis(plan, return_state=True)
        assert state.is_completed(), state.message
        assert secret not in plan.model_dump_json()
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()  # logs reach the server in batches
        with get_client(sync_client=True) as client:
            run_id = state.state_details.flow_run_id
            assert run_id is not None
            run = client.read_flow_run(run_id)
            for _ in range(50):
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
                if len(logs) > 10:
                    break
                time.sleep(0.2)
        assert secret not in repr(run.parameters)
        assert len(logs) > 10 and not [entry.message for entry in logs if secret in entry.message]
    finally:
        stop_rehearsal_target(plan.workdir)
        srv.stop()
