"""One window per source, an approval that waits, and cancellation = rollback, on a real Prefect server.

A real ``prefect server start`` (its own database, for this module), a real process worker running the deployments
prefect.yaml ships (``prefect deploy`` as an operator runs it, with a rehearsal plan as parameters), and flows run
as ``python -m flows.migrate plan.yaml`` in a process of their own (no worker: nobody but the flow itself reacts to a
cancel). The source is a real Redis 7.0, the config a dotenv file, S3 is moto's server, Slack a local stand-in.
Cannot show: real AWS/ElastiCache, the UI's own Cancel button (its API call is made directly: the same
``set_state`` CANCELLING), Prefect Cloud.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.ports import free_port
from tests.conftest import make_plan
from tests.support.outcomes import rehearsal_target
from tests.support.prefect_server import ROOT, ManagedProcess, PrefectServer, start_prefect_server
from tests.support.slack import SlackStandIn

pytestmark = pytest.mark.slow

POOL = "redis-migrations"
LEASE_SECONDS = 30  # the server's deployment concurrency lease, as short as Prefect 3.8.8 allows
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    settings = {"PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION": str(LEASE_SECONDS)}
    with start_prefect_server(tmp_path_factory.mktemp("prefect-server"), free_port(), settings=settings) as srv:
        yield srv


@pytest.fixture
def run_env(tmp_path: Path, slack: SlackStandIn) -> dict[str, str]:
    """What a flow process (worker-run or not) needs: fake AWS credentials, the Slack stand-in's webhook."""
    return {**AWS_ENV, "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results"),
            "PREFECT_LOGGING_LEVEL": "INFO", "TEST_SLACK_WEBHOOK": slack.webhook_url}


@pytest.fixture
def worker(server: PrefectServer, tmp_path: Path, run_env: dict[str, str]) -> Iterator[ManagedProcess]:
    server.ensure_work_pool(POOL)
    proc = server.start_worker(POOL, tmp_path / "worker.log", env=run_env)
    yield proc
    proc.stop()


def _plan(tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path,
          **over: Any) -> MigrationPlan:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 600, "approvers": ["alice"]},
                     notifications={"slack_webhook_secret": "env:TEST_SLACK_WEBHOOK"}, **over)


def _load(source: LocalRedisServer, n: int = 200) -> None:
    with source.client() as r:
        pipe = r.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"session:{i}", f"user-{i}" * 8)
        pipe.execute()


def _writable(source: LocalRedisServer) -> bool:
    """Whether the source takes a write right now (CLIENT PAUSE WRITE holds it: a short timeout says no)."""
    with source.client(socket_timeout=0.3, retry=Retry(NoBackoff(), 0)) as app:
        try:
            app.set("probe:writable", "1")
            return True
        except redis.TimeoutError:
            return False


def _runs(server: PrefectServer, migration_id: str, states: list[str] | None = None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"sort": "EXPECTED_START_TIME_ASC"}
    if states:
        body["flow_runs"] = {"state": {"type": {"any_": states}}}
    return [r for r in server.api("POST", "/flow_runs/filter", json=body)
            if r["parameters"].get("plan", {}).get("migration_id") == migration_id]


def _wait_state(server: PrefectServer, run_id: str, states: set[str], timeout: float, why: Any = "") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = server.api("GET", f"/flow_runs/{run_id}")
        if run["state"] and run["state"]["type"] in states:
            return dict(run)
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} not {states} within {timeout}s: {run['state']}\n"
                                 f"{why() if callable(why) else why}")
        time.sleep(0.3)


def _wait_paused_run(server: PrefectServer, migration_id: str, timeout: float, why: Any = "") -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        paused = _runs(server, migration_id, ["PAUSED"])
        if paused:
            return str(paused[0]["id"])
        time.sleep(0.5)
    raise AssertionError(f"no paused run of {migration_id} within {timeout}s\n{why() if callable(why) else why}")


def _cancel(server: PrefectServer, run_id: str) -> float:
    """What the UI's Cancel does: propose CANCELLING. Returns when it was accepted (monotonic)."""
    answer = server.api("POST", f"/flow_runs/{run_id}/set_state", json={"state": {"type": "CANCELLING"}})
    assert answer["status"] == "ACCEPT", answer
    return time.monotonic()


def _assert_rolled_back_within(source: LocalRedisServer, app_env: Path, env_before: str, since: float,
                               seconds: float = 10) -> float:
    while not _writable(source):
        assert time.monotonic() - since < seconds, f"the source still refuses writes {seconds}s after the cancel"
        time.sleep(0.1)
    took = time.monotonic() - since
    assert app_env.read_text() == env_before  # the config untouched
    return took


def _start_flow_process(server: PrefectServer, plan: MigrationPlan, tmp_path: Path,
                        run_env: dict[str, str]) -> ManagedProcess:
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump({"plan": plan.model_dump(mode="json", exclude_unset=True)}))
    return ManagedProcess.start("flow", [sys.executable, "-m", "flows.migrate", str(plan_path)],
                                env=server.env(run_env), cwd=ROOT, log_path=tmp_path / "flow.log")


def _cancelled_notice(slack: SlackStandIn, migration_id: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        texts = [str(r.body.get("text")) for r in slack.calls("/services/") if isinstance(r.body, dict)]
        hits = [t for t in texts if t.startswith(f"{migration_id}: cancelled:")]
        if hits:
            return hits[0]
        time.sleep(0.2)
    raise AssertionError(f"no 'cancelled' notification; got {[r.body for r in slack.calls('/services/')]}")


def test_cancelling_a_paused_run_of_a_flow_process_rolls_back_within_seconds(
        server: PrefectServer, tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer,
        app_env: Path, slack: SlackStandIn, run_env: dict[str, str]) -> None:
    """`python -m flows.migrate plan.yaml` paused for approval; Cancel → source serving, config untouched, notified,
    Cancelled with the reason — without anybody sending the process a signal."""
    _load(source)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env)
    env_before = app_env.read_text()
    proc = _start_flow_process(server, plan, tmp_path, run_env)
    try:
        run_id = _wait_paused_run(server, plan.migration_id, 120, proc.tail)
        assert not _writable(source)  # paused for the window
        took = _assert_rolled_back_within(source, app_env, env_before, _cancel(server, run_id))
        run = _wait_state(server, run_id, {"CANCELLED", "FAILED", "CRASHED", "COMPLETED"}, 30, proc.tail)
        assert run["state"]["type"] == "CANCELLED", (run["state"], proc.tail())
        message = run["state"]["message"]
        assert "cancelled by the Prefect API/UI while paused for approval" in message, message
        assert "config restored, source serving" in message, message
        assert "while paused for approval" in _cancelled_notice(slack, plan.migration_id)
        proc.proc.wait(30)
        print(f"cancel → source writable: {took:.2f}s")
    finally:
        proc.stop()
        stop_rehearsal_target(plan.workdir)


def test_cancelling_a_flow_process_during_a_step_after_quiesce_rolls_back(
        server: PrefectServer, tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer,
        app_env: Path, slack: SlackStandIn, run_env: dict[str, str]) -> None:
    """Cancelled while the steps after quiesce run (snapshot, upload, create, verify of ~150k keys take seconds):
    the step is interrupted, the source serves again, Cancelled naming the phase."""
    _load(source, 150_000)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env)
    env_before = app_env.read_text()
    proc = _start_flow_process(server, plan, tmp_path, run_env)
    try:
        deadline = time.monotonic() + 120
        while _writable(source):  # quiesce has paused the source: the steps after it are running
            assert time.monotonic() < deadline and proc.alive(), proc.tail()
            time.sleep(0.1)
        runs = _runs(server, plan.migration_id, ["RUNNING"])
        assert runs, f"the run is not Running after quiesce: {_runs(server, plan.migration_id)}\n{proc.tail()}"
        run_id = str(runs[0]["id"])
        took = _assert_rolled_back_within(source, app_env, env_before, _cancel(server, run_id))
        run = _wait_state(server, run_id, {"CANCELLED", "FAILED", "CRASHED", "COMPLETED"}, 30, proc.tail)
        assert run["state"]["type"] == "CANCELLED", (run["state"], proc.tail())
        assert "cancelled by the Prefect API/UI while running after quiesce" in run["state"]["message"]
        assert "config restored, source serving" in run["state"]["message"]
        _cancelled_notice(slack, plan.migration_id)
        assert _runs(server, plan.migration_id, ["PAUSED"]) == []  # it never reached the approval
        print(f"cancel → source writable: {took:.2f}s")
    finally:
        proc.stop()
        stop_rehearsal_target(plan.workdir)


def _deploy_on_demand(server: PrefectServer, plan: MigrationPlan) -> str:
    """prefect.yaml's on-demand deployment, as shipped, with this plan as its parameters; its id."""
    params = {"plan": plan.model_dump(mode="json", exclude_unset=True)}
    server.cli("--no-prompt", "deploy", "--name", "on-demand", "--params", json.dumps(params))
    dep = server.api("GET", "/deployments/name/migrate-redis/on-demand")
    assert dep["global_concurrency_limit"] is None  # as shipped: no slot to lose while paused
    return str(dep["id"])


def _run_deployment(server: PrefectServer, deployment_id: str) -> str:
    return str(server.api("POST", f"/deployments/{deployment_id}/create_flow_run", json={})["id"])


def test_cancelling_a_paused_run_on_a_worker_rolls_back_within_seconds(
        server: PrefectServer, worker: ManagedProcess, tmp_path: Path, moto_endpoint: str, bucket: str,
        source: LocalRedisServer, app_env: Path, slack: SlackStandIn) -> None:
    """The on-demand deployment on a real process worker, paused; Cancel → the runner's SIGTERM (or our own
    watch, whichever first) lands in the flow, which rolls back and ends Cancelled saying why."""
    _load(source)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env)
    env_before = app_env.read_text()
    dep_id = _deploy_on_demand(server, plan)
    run_id = _run_deployment(server, dep_id)
    try:
        assert _wait_paused_run(server, plan.migration_id, 120, worker.tail) == run_id
        assert not _writable(source)
        took = _assert_rolled_back_within(source, app_env, env_before, _cancel(server, run_id))
        run = _wait_state(server, run_id, {"CANCELLED", "FAILED", "CRASHED", "COMPLETED"}, 60, worker.tail)
        assert run["state"]["type"] == "CANCELLED", (run["state"], worker.tail())
        assert "cancelled by the Prefect API/UI while paused for approval" in run["state"]["message"], run["state"]
        assert "config restored, source serving" in run["state"]["message"], (run["state"], worker.tail())
        _cancelled_notice(slack, plan.migration_id)
        print(f"cancel → source writable: {took:.2f}s; {run['state']['message']}")
    finally:
        stop_rehearsal_target(plan.workdir)


def test_a_deployed_run_waits_for_approval_past_the_lease_and_a_second_run_is_refused(
        server: PrefectServer, worker: ManagedProcess, tmp_path: Path, moto_endpoint: str, bucket: str,
        source: LocalRedisServer, app_env: Path) -> None:
    """The on-demand deployment as shipped, on a real worker: paused for approval longer than the server's
    concurrency lease (30 s here); a second run for the same source (same plan, same migration id) started
    meanwhile fails at window-lock naming the first, and undoes nothing of the first; then approved, it cuts over.

    Cannot show: the 225 s lease renewal itself (Prefect 3.8.8 hard-codes the client's 300 s × 0.75; the shipped
    deployments no longer take a lease at all, which the test checks).
    """
    _load(source)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env)
    dep_id = _deploy_on_demand(server, plan)
    first = _run_deployment(server, dep_id)
    try:
        assert _wait_paused_run(server, plan.migration_id, 120, worker.tail) == first
        paused_at = time.monotonic()

        second = _run_deployment(server, dep_id)
        run2 = _wait_state(server, second, {"FAILED", "CANCELLED", "CRASHED", "COMPLETED"}, 90, worker.tail)
        assert run2["state"]["type"] == "FAILED", run2["state"]
        assert f"run {first}" in run2["state"]["message"] and "changed nothing" in run2["state"]["message"], \
            run2["state"]["message"]
        assert not _writable(source)  # the refused run undid nothing of the first's pause

        time.sleep(max(0.0, LEASE_SECONDS + 10 - (time.monotonic() - paused_at)))
        assert server.api("GET", f"/flow_runs/{first}")["state"]["type"] == "PAUSED"

        from prefect.settings import PREFECT_API_URL, temporary_settings

        from tasks.approval import resume_run
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            resume_run(first, "approve", "alice", "after the lease")
        run1 = _wait_state(server, first, {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}, 120, worker.tail)
        assert run1["state"]["type"] == "COMPLETED", (run1["state"], worker.tail())
        target = rehearsal_target(plan)
        assert target is not None
        assert f"REDIS_URL=redis://127.0.0.1:{target.port}/0" in app_env.read_text()
    finally:
        stop_rehearsal_target(plan.workdir)


def _flow_process_of(worker: ManagedProcess, run_id: str) -> int:
    """The pid of the worker's child process running ``run_id``."""
    from tests.support.prefect_server import _descendants

    for pid, _started in _descendants(worker.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if run_id in cmd or run_id.encode() in environ:
            return pid
    raise AssertionError(f"no process of the worker runs {run_id}")


def test_a_worker_run_killed_while_paused_is_rolled_back_by_the_backstop_hook(
        server: PrefectServer, worker: ManagedProcess, tmp_path: Path, moto_endpoint: str, bucket: str,
        source: LocalRedisServer, app_env: Path) -> None:
    """SIGKILL to the flow's process (nothing in it can run): the worker marks the run Crashed and its on_crashed
    hook takes the (now free) window lock and rolls back from the journal: the source serves again."""
    import os
    import signal

    _load(source)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env)
    env_before = app_env.read_text()
    run_id = _run_deployment(server, _deploy_on_demand(server, plan))
    try:
        assert _wait_paused_run(server, plan.migration_id, 120, worker.tail) == run_id
        assert not _writable(source)
        os.kill(_flow_process_of(worker, run_id), signal.SIGKILL)
        killed = time.monotonic()
        run = _wait_state(server, run_id, {"CRASHED", "CANCELLED", "FAILED", "COMPLETED"}, 60, worker.tail)
        assert run["state"]["type"] == "CRASHED", run["state"]
        took = _assert_rolled_back_within(source, app_env, env_before, killed, seconds=60)
        print(f"SIGKILL → source writable: {took:.2f}s")
    finally:
        stop_rehearsal_target(plan.workdir)
