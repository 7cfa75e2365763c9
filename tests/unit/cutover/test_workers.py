"""Worker containers stopped for the window (quiesce.stop_containers): the pure decisions, the plan field, the
journal section and the preflight finding. The Docker side runs in tests/integration/test_workers_flow.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.cutover.workers import is_running, start_workers, stop_workers, with_stopped, without_started
from elasticache_migrate.errors import PlanError
from elasticache_migrate.journal import Journal
from elasticache_migrate.preflight.workers import worker_finding
from elasticache_migrate.state import StoppedWorkers
from tests.support.plans import plan


@pytest.mark.parametrize(("status", "stop"), [("running", True), ("restarting", True), ("exited", False),
                                              ("created", False), ("paused", False), ("dead", False)])
def test_only_a_working_container_is_stopped(status: str, stop: bool) -> None:
    assert is_running(status) is stop


def test_stopped_names_are_kept_once_in_stop_order() -> None:
    rec = with_stopped(None, "sidekiq")
    rec = with_stopped(rec, "celery-beat")
    assert with_stopped(rec, "sidekiq") == rec == StoppedWorkers(("sidekiq", "celery-beat"))
    assert without_started(rec, "sidekiq") == StoppedWorkers(("celery-beat",))
    assert without_started(StoppedWorkers(("sidekiq",)), "sidekiq") is None


def test_plan_names_each_worker_once() -> None:
    p = plan(quiesce={"stop_containers": [" shop-sidekiq", "shop-rq"]})
    assert p.quiesce.stop_containers == ["shop-sidekiq", "shop-rq"] and p.quiesce.stop_timeout_seconds == 30
    with pytest.raises(PlanError, match="names shop-rq more than once"):
        plan(quiesce={"stop_containers": ["shop-rq", "shop-rq"]})
    with pytest.raises(PlanError, match="a container name is empty"):
        plan(quiesce={"stop_containers": [""]})


def test_journal_keeps_the_stopped_workers(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.update(workers=StoppedWorkers(("shop-sidekiq", "shop-rq")))
    assert '"workers"' in journal.path.read_text()
    assert Journal(tmp_path).read().workers == StoppedWorkers(("shop-sidekiq", "shop-rq"))
    journal.update(workers=None)
    assert Journal(tmp_path).read().workers is None


def test_nothing_to_do_without_workers_touches_no_engine(tmp_path: Path) -> None:
    """No stop_containers and nothing journaled: neither side builds a Docker client (none is reachable here)."""
    p = plan(staging={"bucket": "stage", "workdir": str(tmp_path)},
             cutover={"docker_host": "unix:///nonexistent/docker.sock"})
    assert stop_workers(p) == StoppedWorkers()
    assert start_workers(p) == ()


def test_preflight_finding_per_state() -> None:
    missing = worker_finding("shop-rq", None, "unix:///var/run/docker.sock")
    assert missing.severity == "block" and "docker ps -a" in missing.todo and "shop-rq" in missing.seen
    running = worker_finding("shop-rq", "running", "e")
    assert running.severity == "info" and "stopped before the pause" in running.seen
    stopped = worker_finding("shop-rq", "exited", "e")
    assert stopped.severity == "warn" and "left stopped" in stopped.seen and "docker start shop-rq" in stopped.todo
