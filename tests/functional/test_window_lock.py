"""The window lock (elasticache_migrate.source.lock) on real servers of the versions the field runs (3.2, 6.2, 7.0):
one holder per source, a second run refused naming the holder, the lock kept through the server's idle
``timeout``, taken back after a dropped connection when nobody else took it, lost (and never taken back) when
someone did, and nothing written into the user's data. No Prefect: the engine class itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from elasticache_migrate.errors import WindowLocked
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.lock import LOCK_PREFIX, WindowLock
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import make_plan, need

VERSIONS = ["redis-3.2", "redis-6.2", "redis-7.0"]


def _plan(tmp_path: Path, port: int, mid: str) -> MigrationPlan:
    return make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=port,
                     migration_id=mid)


def _lock_clients(r: redis.Redis) -> list[dict[str, Any]]:
    return [c for c in r.client_list() if str(c.get("name", "")).startswith(LOCK_PREFIX)]


def _kill_lock_connection(r: redis.Redis, lock: WindowLock) -> None:
    for c in r.client_list():
        if c.get("name") == lock.name:
            r.execute_command("CLIENT", "KILL", c["addr"])  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("binary", VERSIONS)
def test_one_window_per_source_the_second_run_is_refused_naming_the_first(tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        with src.client() as r:
            r.set("user:1", "alice")
            before = {k: r.dump(k) for k in r.scan_iter()}
        first = WindowLock(_plan(tmp_path, src.port, "m-first"), "run-1", keepalive_seconds=0.2).acquire()
        try:
            for mid in ("m-second", "m-first"):  # another migration, or the same one started twice
                with pytest.raises(WindowLocked) as refused:
                    WindowLock(_plan(tmp_path, src.port, mid), "run-2").acquire()
                assert "migration m-first, run run-1" in str(refused.value)
                assert f"migration {mid} changed nothing" in str(refused.value)
            with src.client() as r:
                assert [c["name"] for c in _lock_clients(r)] == [first.name]  # the refused one let go
            first.check()
        finally:
            first.release()
        with WindowLock(_plan(tmp_path, src.port, "m-second"), "run-2"):  # free again once released
            pass
        with src.client() as r:
            assert _lock_clients(r) == []
            assert {k: r.dump(k) for k in r.scan_iter()} == before  # nothing written into the user's data


@pytest.mark.parametrize("binary", VERSIONS)
def test_the_lock_survives_the_servers_idle_timeout_and_a_dropped_connection(tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": "", "timeout": "1"}) as src:
        lock = WindowLock(_plan(tmp_path, src.port, "m-first"), "run-1", keepalive_seconds=0.3).acquire()
        try:
            time.sleep(3)  # the server drops clients idle for more than 1 s (checked every ~1 s)
            with src.client() as r:
                assert [c["name"] for c in _lock_clients(r)] == [lock.name]
                _kill_lock_connection(r, lock)
            time.sleep(1.5)  # the keep-alive reconnects; nobody else wanted the window
            lock.check()
            with src.client() as r:
                assert [c["name"] for c in _lock_clients(r)] == [lock.name]
            with pytest.raises(WindowLocked):
                WindowLock(_plan(tmp_path, src.port, "m-second"), "run-2").acquire()
        finally:
            lock.release()


@pytest.mark.parametrize("binary", ["redis-3.2", "redis-7.0"])
def test_a_lock_taken_by_another_run_while_disconnected_is_lost_for_good(tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        lock = WindowLock(_plan(tmp_path, src.port, "m-first"), "run-1", keepalive_seconds=2).acquire()
        other = None
        try:
            with src.client() as r:
                _kill_lock_connection(r, lock)
            other = WindowLock(_plan(tmp_path, src.port, "m-second"), "run-2").acquire()  # in the gap
            with pytest.raises(WindowLocked) as lost:
                lock.check()
            assert "lost the source's window lock" in str(lost.value) and "m-second" in str(lost.value)
            assert lost.value.step == "switch-config"
            other.check()  # the other run keeps it: the loser's reconnect is newer
            time.sleep(2.5)
            with src.client() as r:
                assert [c["name"] for c in _lock_clients(r)] == [other.name]
        finally:
            lock.release()
            if other is not None:
                other.release()
