"""Worker containers (quiesce.stop_containers) around the window, on a real Docker engine and a real flow run.

The worker is a container of this host's binaries (no registry): at start it reads REDIS_URL from the app's env
file (bind-mounted, the cutover backend ``dotenv``), prints it, and INCRs ``worker:ticks`` ten times a second
over one connection (``redis-cli -r -1 -i 0.1``), as a Celery/RQ/Sidekiq worker holds its connection and writes
whenever it runs a job. Left running it would keep the quiesce's drain-wait (``require_no_clients``) from ever
seeing the source free: a run that gets past the quiesce shows it was stopped before then.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.cutover.workers import stop_workers
from elasticache_migrate.journal import Journal
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.state import StoppedWorkers
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from flows.migrate import migrate_redis
from tasks.approval import resume_run, wait_for_paused_run
from tests.conftest import make_plan
from tests.support.outcomes import migrated

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

WORKER = (
    'url=""; while IFS= read -r line; do case "$line" in REDIS_URL=*) url="${line#REDIS_URL=}";; esac; '
    'done < /config/app.env; echo "REDIS_URL=$url"; echo started; '
    'exec redis-cli -u "$url" -r -1 -i 0.1 INCR worker:ticks'
)


@pytest.fixture(scope="module")
def worker_image(docker_engine: Any) -> str:
    from elasticache_migrate.testing.docker_engine import build_redis_image

    client = docker_engine.client()
    try:
        return build_redis_image(client)  # sh + redis-cli are all the worker needs
    finally:
        client.close()


@pytest.fixture
def app_env(tmp_path: Path, source: LocalRedisServer) -> Path:
    cfg = tmp_path / "appcfg"
    cfg.mkdir()
    env = cfg / "app.env"
    env.write_text(f"APP_ENV=production\nREDIS_URL=redis://127.0.0.1:{source.port}/0\n")
    return env


@pytest.fixture
def workers(docker_engine: Any, worker_image: str, app_env: Path) -> Iterator[Callable[[bool], Any]]:
    """Start worker containers reading ``app_env`` (running, or created and left stopped); removed afterwards."""
    client = docker_engine.client()
    made: list[Any] = []

    def run(running: bool = True) -> Any:
        kwargs: dict[str, Any] = {"name": f"shop-worker-{uuid.uuid4().hex[:6]}", "network_mode": "host",
                                  "volumes": {str(app_env.parent): {"bind": "/config", "mode": "ro"}}}
        c = client.containers.create(worker_image, ["sh", "-c", WORKER], **kwargs)
        made.append(c)
        if running:
            c.start()
        c.reload()
        return c

    yield run
    for c in made:
        c.remove(force=True)
    client.close()


def _ticks(port: int) -> int:
    return int(redis_client("127.0.0.1", port, timeout=2).get("worker:ticks") or 0)


def _until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _status(c: Any) -> str:
    c.reload()
    return str(c.status)


def _url_in_last_start(c: Any) -> str:
    last = c.logs().decode().rsplit("started\n", 1)[0]
    return [ln.split("=", 1)[1] for ln in last.splitlines() if ln.startswith("REDIS_URL=")][-1]


def _finished_at(c: Any) -> float:
    c.reload()
    return datetime.fromisoformat(c.attrs["State"]["FinishedAt"][:26].rstrip("Z") + "+00:00").timestamp()


def _plan(tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, env: Path, engine: Any,
          names: list[str], approval: bool) -> Any:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     quiesce={"stop_containers": names, "stop_timeout_seconds": 1},  # redis-cli as pid 1: no SIGTERM
                     cutover={"backend": "dotenv", "dotenv_path": str(env), "docker_host": engine.base_url},
                     approval={"enabled": approval, "timeout_seconds": 120})


def _decide(decision: str, seen: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        run_id = wait_for_paused_run(timeout=120)
        seen()
        resume_run(run_id, decision, "alice")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_worker_stopped_for_the_window_and_started_on_the_new_config(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path, docker_engine: Any,
        workers: Callable[[bool], Any]) -> None:
    worker, idle = workers(True), workers(False)           # `idle` is one the user had stopped: never started
    _until(lambda: _ticks(source.port) > 3, "the worker's writes on the source")
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env, docker_engine, [worker.name, idle.name], True)
    during: dict[str, Any] = {}

    def look() -> None:                                     # while the run waits for approval
        during.update(worker=_status(worker), ticks=_ticks(source.port),
                      paused_at=(Journal(plan.workdir).read().quiesce or pytest.fail("no quiesce")).paused_at,
                      journal=Journal(plan.workdir).read().workers)

    decider = _decide("approve", look)
    try:
        result = migrated(migrate_redis(plan))
        decider.join(5)
        assert during["worker"] == "exited" and during["journal"] == StoppedWorkers((worker.name,))
        assert _finished_at(worker) < during["paused_at"]  # stopped before the pause
        new_url = f"redis://127.0.0.1:{result.endpoint.port}/0"
        assert _status(worker) == "running" and _url_in_last_start(worker) == new_url   # started on the new config
        assert worker.logs().decode().count("started\n") == 2
        first_reply = worker.logs().decode().rsplit("started\n", 1)[1].split()[0]
        assert int(first_reply) == during["ticks"] + 1      # the target held every write it made before the stop
        _until(lambda: _ticks(result.endpoint.port) > during["ticks"] + 3, "the worker's writes on the target")
        assert _ticks(source.port) == during["ticks"]       # and none on the old source
        assert _status(idle) == "created"                   # the user's stopped container was left alone
        assert Journal(plan.workdir).read().workers is None
    finally:
        stop_rehearsal_target(plan.workdir)


def test_rejected_window_starts_the_worker_on_the_old_config(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path, docker_engine: Any,
        workers: Callable[[bool], Any]) -> None:
    worker = workers(True)
    _until(lambda: _ticks(source.port) > 3, "the worker's writes on the source")
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env, docker_engine, [worker.name], True)
    seen: list[str] = []
    decider = _decide("reject", lambda: seen.append(_status(worker)))
    try:
        state = migrate_redis(plan, return_state=True)
        decider.join(5)
        assert state.is_cancelled() and seen == ["exited"]
        assert _status(worker) == "running" and _url_in_last_start(worker) == f"redis://127.0.0.1:{source.port}/0"
        before = _ticks(source.port)
        _until(lambda: _ticks(source.port) > before + 3, "the worker writing to the source again")
        assert Journal(plan.workdir).read().workers is None
    finally:
        stop_rehearsal_target(plan.workdir)


def test_rerun_after_a_crash_right_after_the_stop_starts_the_worker(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path, docker_engine: Any,
        workers: Callable[[bool], Any]) -> None:
    worker = workers(True)
    _until(lambda: _ticks(source.port) > 3, "the worker's writes on the source")
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env, docker_engine, [worker.name], False)
    stop_workers(plan)                                      # the first run stopped it, then died
    assert _status(worker) == "exited"
    assert Journal(plan.workdir).read().workers == StoppedWorkers((worker.name,))
    try:
        result = migrated(migrate_redis(plan))              # the re-run: it is stopped, and still its to start
        assert _status(worker) == "running"
        assert _url_in_last_start(worker) == f"redis://127.0.0.1:{result.endpoint.port}/0"
        assert Journal(plan.workdir).read().workers is None
    finally:
        stop_rehearsal_target(plan.workdir)


def test_preflight_and_start_on_the_real_engine(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                source: LocalRedisServer, app_env: Path, docker_engine: Any,
                                                workers: Callable[[bool], Any]) -> None:
    """Preflight names each worker's state (a missing one blocks); a start that fails for one container still
    starts the others and keeps only the failed one in the journal, for the re-run."""
    from elasticache_migrate.cutover.workers import start_workers
    from elasticache_migrate.errors import CutoverError
    from elasticache_migrate.preflight.facts import PreflightFacts
    from elasticache_migrate.preflight.workers import worker_findings

    running, idle = workers(True), workers(False)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, app_env, docker_engine,
                 [running.name, idle.name, "shop-worker-gone"], False)
    found = {f.seen.split()[4 if f.severity == "block" else 2].strip("'"): f.severity
             for f in worker_findings(plan, PreflightFacts())}
    assert found == {running.name: "info", idle.name: "warn", "shop-worker-gone": "block"}

    running.stop(timeout=1)
    Journal(plan.workdir).update(workers=StoppedWorkers(("shop-worker-gone", running.name)))
    with pytest.raises(CutoverError, match="'shop-worker-gone' does not exist") as err:
        start_workers(plan)
    assert "docker ps -a" in err.value.remedy
    assert _status(running) == "running" and _status(idle) == "created"
    assert Journal(plan.workdir).read().workers == StoppedWorkers(("shop-worker-gone",))
