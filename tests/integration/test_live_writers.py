"""Nothing lost with the app writing the whole time (issue "Nothing lost", part 5).

Four writer threads play the application: each reads the app's env file (the cutover backend ``dotenv``)
for its Redis URL and writes as fast as it can, through quiesce, snapshot, the approval pause and the
cutover. A write counts as acknowledged only when the server answered OK; anything else (NOREPLICAS, a
write held by CLIENT PAUSE and abandoned at the socket timeout, a connection error) counts as refused. A
writer re-reads the env file every ~50 ms and after every error, and follows it to the target once the
config says so. At the end every acknowledged write — to the source before the pause, to the target after
the switch — must be on the target with its value.

The trap: a SET held by ``CLIENT PAUSE WRITE`` never answers; the client gives up at its timeout and
must not count it. (Redis drops a held command when its client disconnects, and redis-py disconnects on
a timeout; with its retries disabled here nothing re-sends it behind our back.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.cutover.dotenv import get_value
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from flows.migrate import migrate_redis
from tasks.approval import resume_run
from tests.conftest import make_plan, need
from tests.support.outcomes import migrated

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

WRITERS = 4
TIMEOUT = 0.5       # the writers' socket timeout: a write held by CLIENT PAUSE is abandoned after this


def _url(env_file: Path) -> str:
    value = get_value(env_file.read_text(), "REDIS_URL")
    assert value, f"no REDIS_URL in {env_file}"
    return value


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, protocol=2, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                retry=Retry(NoBackoff(), 0))  # one try per write: no silent re-sends


def _kind(exc: Exception) -> str:
    if "NOREPLICAS" in str(exc):
        return "NOREPLICAS"
    if isinstance(exc, redis.TimeoutError):
        return "timeout (held by the pause, abandoned)"
    if isinstance(exc, redis.ConnectionError):
        return "connection"
    return type(exc).__name__


@dataclass
class Writer:
    """One application thread: SET writer:<id>:<seq> <seq>, as fast as it can, wherever the config says."""

    wid: int
    env_file: Path
    stop: threading.Event
    acked: list[tuple[str, int, str]] = field(default_factory=list)   # (key, value, URL that answered OK)
    refused: Counter[str] = field(default_factory=Counter)
    refused_keys: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _loop(self) -> None:
        url = _url(self.env_file)
        r = _client(url)
        read_at = time.monotonic()
        seq = 0
        while not self.stop.is_set():
            if time.monotonic() - read_at >= 0.05:
                url, r = self._follow(url, r)
                read_at = time.monotonic()
            seq += 1
            key = f"writer:{self.wid}:{seq}"
            try:
                ok = r.set(key, seq)
            except (redis.RedisError, OSError) as exc:
                self.refused[_kind(exc)] += 1
                self.refused_keys.append(key)
                url, r = self._follow(url, r)
                read_at = time.monotonic()
                time.sleep(0.01)  # a client backs off a little after an error
                continue
            if ok is True:
                self.acked.append((key, seq, url))
            else:
                self.refused[f"reply {ok!r}"] += 1
                self.refused_keys.append(key)
        r.close()

    def _follow(self, url: str, r: redis.Redis) -> tuple[str, redis.Redis]:
        new = _url(self.env_file)
        if new == url:
            return url, r
        r.close()
        return new, _client(new)


def _paused_run_of(migration_id: str, timeout: float = 120) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for run in client.read_flow_runs(flow_run_filter=flt):
                if (run.parameters.get("plan") or {}).get("migration_id") == migration_id:
                    return run.id
            time.sleep(0.2)
    raise TimeoutError(f"no paused run of {migration_id} within {timeout}s")


@pytest.mark.parametrize("version,mode", [("redis-7.0", "CLIENT PAUSE WRITE"),
                                          ("redis-3.2", "NOREPLICAS (min-slaves-to-write)")])
def test_every_acknowledged_write_reaches_the_target(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                     version: str, mode: str) -> None:
    """Writers stay connected through the whole window (quiesce.require_no_clients false); the approval is
    given after ~2 s of refused writes. Losses must be 0."""
    binary = need(version)
    need("redis-7.0")
    source = LocalRedisServer(binary, workdir=tmp_path / "source").start()
    env_file = tmp_path / "app.env"
    env_file.write_text(f"APP_ENV=production\nREDIS_URL={source.url}\nWORKERS=4\n")
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     quiesce={"require_no_clients": False, "max_pause_seconds": 600},
                     cutover={"backend": "dotenv", "dotenv_path": str(env_file)},
                     approval={"enabled": True, "timeout_seconds": 120})
    stop = threading.Event()
    writers = [Writer(i, env_file, stop) for i in range(WRITERS)]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.wid}", daemon=True) for w in writers]

    def refused() -> int:
        return sum(sum(w.refused.values()) for w in writers)

    approval: dict[str, Any] = {}

    def approve_after_refusals() -> None:
        try:
            run_id = _paused_run_of(plan.migration_id)
            approval["refused_at_pause"] = refused()
            time.sleep(2)                                  # ~2 s of refused writes while a human looks
            approval["refused_at_approval"] = refused()
            resume_run(run_id, "approve", "alice", "writers held for 2 s")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            approval["error"] = exc

    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        while sum(len(w.acked) for w in writers) < 2000 and time.monotonic() - t0 < 10:
            time.sleep(0.05)                               # the app is busy on the source before the window
        decider = threading.Thread(target=approve_after_refusals, daemon=True)
        decider.start()
        state = migrate_redis(plan, return_state=True)
        decider.join(30)
        target_url = _url(env_file)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(any(u == target_url for *_, u in w.acked[-50:])
                                                       for w in writers):
            time.sleep(0.05)                               # every writer has followed the config to the target
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    try:
        assert "error" not in approval, approval.get("error")
        assert state.is_completed(), state.message
        assert not [w.error for w in writers if w.error], [w.error for w in writers]
        assert target_url != source.url
        target = redis.Redis.from_url(target_url, protocol=2)
        acked = [a for w in writers for a in w.acked]
        values: list[Any] = []
        for i in range(0, len(acked), 5000):
            values += target.mget([k for k, _, _ in acked[i:i + 5000]])
        lost = [(k, v, u) for (k, v, u), got in zip(acked, values, strict=True) if got != str(v).encode()]
        on_source = sum(u == source.url for *_, u in acked)
        on_target = sum(u == target_url for *_, u in acked)
        kinds = sum((w.refused for w in writers), Counter())
        refused_landed = sum(target.exists(k) for w in writers for k in w.refused_keys[-200:])
        counts = (f"{version} ({mode}): acknowledged on source {on_source} (keys in the snapshot "
                  f"{migrated(state.result()).keys_verified}), acknowledged on target {on_target}, "
                  f"refused {sum(kinds.values())} {dict(kinds)}, lost {len(lost)}; refused during the 2 s before "
                  f"approval {approval['refused_at_approval'] - approval['refused_at_pause']}; "
                  f"refused writes found on the target anyway (last 200 per writer, not required) {refused_landed}; "
                  f"{time.monotonic() - t0:.1f}s")
        print("\n" + counts)
        assert on_source + on_target == len(acked)       # no write was acknowledged anywhere else
        assert not lost, f"{counts}; first lost: {lost[:5]}"
        assert on_source > 0 and on_target > 0 and kinds, counts
        assert approval["refused_at_approval"] > approval["refused_at_pause"], counts  # held while waiting
        assert all({u for *_, u in w.acked} == {source.url, target_url} for w in writers), counts
    finally:
        stop_rehearsal_target(plan.workdir)
        source.stop()
