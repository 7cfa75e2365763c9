"""The quiesce and snapshot engines (elasticache_migrate.source.quiesce / .snapshot) against real servers: writes
paused with CLIENT PAUSE WRITE (Redis >= 6.2) or refused with NOREPLICAS (older, or quiesce.during_window:
refuse), the pause journaled and undone exactly, application clients named when they do not leave, and BGSAVE's
snapshot taken after the call. No moto, no Prefect: the engine functions themselves (the fence: test_fence.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.errors import QuiesceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import source_client
from elasticache_migrate.source.quiesce import REFUSE_WRITES_REPLICAS, pause, unpause
from elasticache_migrate.source.snapshot import bgsave
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import make_plan, need

log = logging.getLogger("test-quiesce")


def _plan(tmp_path: Path, port: int, **over: Any) -> MigrationPlan:
    """A plan for the engine alone: nothing here talks to AWS, so the endpoint is never dialled."""
    return make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=port, **over)


def _write_blocks(server: LocalRedisServer) -> bool:
    """Whether a SET from an application client waits (CLIENT PAUSE WRITE holds it) instead of completing."""
    with server.client(socket_timeout=0.3, retry=Retry(NoBackoff(), 0)) as app:
        try:
            app.set("probe", "x")
        except redis.TimeoutError:
            return True
    return False


def test_client_pause_write_is_journaled_and_given_back(tmp_path: Path, redis70: Any) -> None:
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        state = pause(plan, log=log)
        assert state.mode == "client-pause-write" and state.pause_expires_at == state.paused_at + 600
        assert Journal(plan.workdir).read().quiesce == state and not state.saved_config
        assert _write_blocks(src)
        with src.client() as r:
            assert r.get("anything") is None  # reads go on
        unpause(plan, state, log=log)
        assert Journal(plan.workdir).read().quiesce is None
        assert not _write_blocks(src)


def test_refuse_during_the_window_on_a_new_server(tmp_path: Path, redis70: Any) -> None:
    """quiesce.during_window: refuse — writes fail at once with NOREPLICAS on 7.0 too (no CLIENT PAUSE)."""
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port, quiesce={"during_window": "refuse", "max_pause_seconds": 600})
        state = pause(plan, log=log)
        assert state.mode == "refuse-writes" and state.pause_expires_at is None
        assert state.saved_config == {"min-replicas-to-write": "0", "min-replicas-max-lag": "10"}
        with src.client(socket_timeout=2, retry=Retry(NoBackoff(), 0)) as app:
            t0 = time.monotonic()
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                app.set("k", "v")
            assert time.monotonic() - t0 < 1  # at once, not held
        unpause(plan, log=log)
        with src.client() as r:
            assert r.config_get("min-replicas-*") == {"min-replicas-to-write": "0", "min-replicas-max-lag": "10"}
            assert r.set("k", "v")


def test_refuse_writes_on_an_old_server_keeps_the_first_values_and_puts_them_back(tmp_path: Path) -> None:
    with LocalRedisServer(need("redis-3.2"), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        with src.client() as r:
            before = r.config_get("min-slaves-*")
        state = pause(plan, log=log)
        assert state.mode == "refuse-writes" and state.pause_expires_at is None
        assert state.saved_config == {"min-slaves-to-write": "0", "min-slaves-max-lag": "10"}
        with src.client() as r:
            assert r.config_get("min-slaves-to-write") == {"min-slaves-to-write": str(REFUSE_WRITES_REPLICAS)}
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                r.set("k", "v")
            assert r.get("k") is None

        again = pause(plan, log=log)  # a re-run reads the journal: the values from before the first run, not ours
        assert again.saved_config == state.saved_config and Journal(plan.workdir).read().quiesce == again

        unpause(plan, log=log)  # the state from the journal, as after a crash
        assert Journal(plan.workdir).read().quiesce is None
        with src.client() as r:
            assert r.config_get("min-slaves-*") == before
            assert r.set("k", "v")
        unpause(plan, log=log)  # nothing left to undo: harmless


def test_refuse_writes_without_config_is_a_quiesce_error_and_changes_nothing(tmp_path: Path) -> None:
    with LocalRedisServer(need("redis-3.2"), workdir=tmp_path / "source",
                          config={"save": "", "rename-command": 'CONFIG ""'}) as src:
        plan = _plan(tmp_path, src.port)
        with pytest.raises(QuiesceError, match="CONFIG GET min-slaves-to-write failed on the source") as e:
            pause(plan, log=log)
        assert "grant CONFIG" in e.value.remedy and not e.value.retryable
        assert Journal(plan.workdir).read().quiesce is None
        with src.client() as r:
            assert r.set("k", "v")


def test_application_clients_that_stay_are_named(tmp_path: Path, redis70: Any) -> None:
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port, quiesce={"drain_timeout_seconds": 0.5, "max_pause_seconds": 600,
                                                  "require_no_clients": True})
        with src.client(client_name="sidekiq-worker") as app:
            app.ping()
            t0 = time.monotonic()
            with pytest.raises(QuiesceError, match=r"1 application client\(s\) still connected") as e:
                pause(plan, log=log)
        assert "name=sidekiq-worker" in e.value.message and time.monotonic() - t0 >= 0.5
        assert Journal(plan.workdir).read().quiesce is None and not _write_blocks(src)
        assert pause(_plan(tmp_path, src.port), log=log).mode == "client-pause-write"  # once it has gone


@pytest.mark.parametrize("binary", ["redis-7.0", "redis-3.2"])
def test_bgsave_waits_out_a_save_already_running_and_takes_its_own(tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        r = source_client(plan)
        r.mset({f"k{i}": i for i in range(200)})
        before = r.info("persistence")
        if binary == "redis-7.0":
            r.config_set("rdb-key-save-delay", "2000")  # 2 ms a key: the first save runs ~0.4 s
            r.execute_command("BGSAVE")  # started "before the pause"
        snap = bgsave(r, 30, log)
        after = r.info("persistence")
        assert snap.last_save_time == after["rdb_last_save_time"] and snap.changes_since_save == 0
        if binary == "redis-7.0":
            assert snap.rdb_saves == after["rdb_saves"] == before["rdb_saves"] + 2  # the running one, then ours
        else:
            assert snap.rdb_saves is None and snap.last_save_time > before["rdb_last_save_time"]
        r.close()
