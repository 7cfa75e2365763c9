"""Nothing lost with the app writing the whole time (issue 11: "live-writer test").

Four writer threads play the application, each a different redis-py client as applications have them:

- ``defaults``: ``Redis(host=, port=)`` — no socket timeout, redis-py's default retries (a write held by the pause
  waits as long as the pause; a write whose connection is closed is re-sent);
- ``timeout``: ``socket_timeout=0.5`` and no retries (a held write is abandoned at the timeout);
- ``retry``: ``socket_timeout=1`` with ``Retry(ExponentialBackoff, 5)`` (re-sends on timeouts and lost connections);
- ``counter``: a MULTI/EXEC pipeline ``INCR counter`` + ``SET counter:<n> <n>`` (the issue saw the same INCR value
  handed out twice, once by the old source after the switch).

Each reads the app's env file (the cutover backend ``dotenv``) for its Redis URL, re-reads it every ~50 ms and
after every error, and logs every acknowledged write (the server answered OK) with the URL and the time. The run
goes through quiesce, the approval (answered from a thread with ``resume_run``, only after the write pause's
``max_pause_seconds`` has passed: the pause must be renewed meanwhile), the fence and the cutover. At the end:
every acknowledged write is on the target with its value, no write was acknowledged by the old source after the
switch (and its counters show no write after the snapshot), no INCR value was handed out twice.

A second test lifts the pause (or the refusal) from outside while the run waits for approval and writes: the
fence's re-check must roll the run back (Failed, with the reason), config untouched, the write kept.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from elasticache_migrate.cutover.dotenv import get_value
from elasticache_migrate.journal import Journal
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.verify.run import writes_since_snapshot
from flows.migrate import migrate_redis
from tasks.approval import resume_run
from tests.conftest import make_plan, need
from tests.support.outcomes import migrated

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

KINDS = ("defaults", "timeout", "retry", "counter")
MAX_PAUSE = 30      # the plan's minimum: the approval comes after it, so the pause must have been renewed


def _url(env_file: Path) -> str:
    value = get_value(env_file.read_text(), "REDIS_URL")
    assert value, f"no REDIS_URL in {env_file}"
    return value


def _client(kind: str, url: str, resp2: bool) -> redis.Redis:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 6379
    proto: dict[str, Any] = {"protocol": 2} if resp2 else {}  # Redis < 6 does not know HELLO
    if kind == "timeout":
        return redis.Redis(host=host, port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                           retry=Retry(NoBackoff(), 0), **proto)
    if kind == "retry":
        return redis.Redis(host=host, port=port, socket_timeout=1,
                           retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 5),
                           retry_on_error=[redis.TimeoutError, redis.ConnectionError], **proto)
    return redis.Redis(host=host, port=port, **proto)  # defaults (and counter): no socket timeout


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
    """One application thread writing as fast as it can, wherever the config says."""

    wid: int
    kind: str
    env_file: Path
    stop: threading.Event
    resp2: bool = False
    acked: list[tuple[str, int, str, float]] = field(default_factory=list)  # (key, value, URL that said OK, when)
    refused: Counter[str] = field(default_factory=Counter)
    counted: list[int] = field(default_factory=list)  # the INCR values handed out to this writer (kind counter)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _loop(self) -> None:
        url = _url(self.env_file)
        r = _client(self.kind, url, self.resp2)
        read_at = time.monotonic()
        seq = 0
        while not self.stop.is_set():
            if time.monotonic() - read_at >= 0.05:
                url, r = self._follow(url, r)
                read_at = time.monotonic()
            seq += 1
            try:
                done = self._write_once(r, seq)
            except (redis.RedisError, OSError) as exc:
                self.refused[_kind(exc)] += 1
                url, r = self._follow(url, r)
                read_at = time.monotonic()
                time.sleep(0.01)  # a client backs off a little after an error
                continue
            if done is None:
                self.refused["unexpected reply"] += 1
            else:
                self.acked.append((*done, url, time.time()))
        r.close()

    def _write_once(self, r: redis.Redis, seq: int) -> tuple[str, int] | None:
        key = f"writer:{self.wid}:{seq}"
        if self.kind == "counter":  # MULTI; INCR counter; SET writer:<id>:<seq> <seq>; EXEC
            pipe = r.pipeline(transaction=True)
            pipe.incr("counter")
            pipe.set(key, seq)
            n, ok = pipe.execute()
            if ok is not True:
                return None
            self.counted.append(int(n))
            return key, seq
        return (key, seq) if r.set(key, seq) is True else None

    def _follow(self, url: str, r: redis.Redis) -> tuple[str, redis.Redis]:
        new = _url(self.env_file)
        if new == url:
            return url, r
        r.close()
        return new, _client(self.kind, new, self.resp2)


def _paused_run_of(migration_id: str, timeout: float = 180) -> Any:
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


def _paused_at(workdir: Path) -> float:
    quiesced = Journal(workdir).read().quiesce
    assert quiesced is not None, "the journal holds no quiesce state while the run waits for approval"
    return quiesced.paused_at


def _plan(tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, env_file: Path) -> Any:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     quiesce={"require_no_clients": False, "max_pause_seconds": MAX_PAUSE},
                     cutover={"backend": "dotenv", "dotenv_path": str(env_file)},
                     approval={"enabled": True, "timeout_seconds": 300})


@pytest.mark.parametrize("version,mode", [("redis-7.0", "CLIENT PAUSE WRITE, renewed"),
                                          ("redis-6.2", "CLIENT PAUSE WRITE, renewed"),
                                          ("redis-3.2", "NOREPLICAS (min-slaves-to-write)")])
def test_every_acknowledged_write_reaches_the_target(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                     version: str, mode: str) -> None:
    """Writers stay connected through the whole window (quiesce.require_no_clients false); the approval is given
    only after max_pause_seconds. Losses must be 0, and the old source acknowledges nothing after the switch."""
    binary = need(version)
    need("redis-7.0")
    source = LocalRedisServer(binary, workdir=tmp_path / "source", config={"save": ""}).start()
    env_file = tmp_path / "app.env"
    env_file.write_text(f"APP_ENV=production\nREDIS_URL={source.url}\nWORKERS=4\n")
    plan = _plan(tmp_path, moto_endpoint, bucket, source, env_file)
    stop = threading.Event()
    writers = [Writer(i, kind, env_file, stop, resp2=version == "redis-3.2") for i, kind in enumerate(KINDS)]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.kind}", daemon=True) for w in writers]

    def refused() -> int:
        return sum(sum(w.refused.values()) for w in writers)

    approval: dict[str, Any] = {}

    def approve_after_the_pause_would_have_expired() -> None:
        try:
            run_id = _paused_run_of(plan.migration_id)
            approval["refused_at_pause"] = refused()
            approval["acked_at_pause"] = sum(len(w.acked) for w in writers)
            wait = _paused_at(plan.workdir) + MAX_PAUSE + 3 - time.time()
            time.sleep(max(0.0, wait))                     # past max_pause_seconds: only the renewal holds it
            approval["refused_at_approval"] = refused()
            approval["acked_at_approval"] = sum(len(w.acked) for w in writers)
            resume_run(run_id, "approve", "alice", f"after {MAX_PAUSE + 3}s")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            approval["error"] = exc

    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        while sum(len(w.acked) for w in writers) < 2000 and time.monotonic() - t0 < 10:
            time.sleep(0.05)                               # the app is busy on the source before the window
        decider = threading.Thread(target=approve_after_the_pause_would_have_expired, daemon=True)
        decider.start()
        state = migrate_redis(plan, return_state=True)
        decider.join(30)
        target_url = _url(env_file)
        switched_at = env_file.stat().st_mtime              # the dotenv backend wrote the file once: the switch
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(any(u == target_url for _k, _v, u, _t in w.acked[-50:])
                                                       for w in writers):
            time.sleep(0.05)                               # every writer has followed the config to the target
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(15)

    try:
        assert "error" not in approval, approval.get("error")
        assert state.is_completed(), state.message
        assert not [w.error for w in writers if w.error], [w.error for w in writers]
        assert target_url != source.url
        target = redis.Redis.from_url(target_url, protocol=2)
        acked = [(k, v, u, t) for w in writers for k, v, u, t in w.acked]
        values: list[Any] = []
        for i in range(0, len(acked), 5000):
            values += target.mget([k for k, _, _, _ in acked[i:i + 5000]])
        lost = [(k, v, u) for (k, v, u, _t), got in zip(acked, values, strict=True) if got != str(v).encode()]
        on_source = [t for _k, _v, u, t in acked if u == source.url]
        on_target = sum(u == target_url for _k, _v, u, _t in acked)
        late_on_source = [t for t in on_source if t > switched_at]
        counted = [n for w in writers for n in w.counted]
        twice = [n for n, c in Counter(counted).items() if c > 1]
        with source.client() as src:  # the server's own count of writes since the snapshot the target holds
            source_changes = writes_since_snapshot(src.info("persistence"), migrated(state.result()).snapshot)
        kinds = {w.kind: dict(w.refused) for w in writers}
        counts = (f"{version} ({mode}): acknowledged on source {len(on_source)} (keys in the snapshot "
                  f"{migrated(state.result()).keys_verified}), acknowledged on target {on_target}, lost {len(lost)}, "
                  f"acknowledged by the old source after the switch {len(late_on_source)}, INCR values handed out "
                  f"twice {len(twice)}, source writes after the snapshot {source_changes}; refused per writer {kinds};"
                  f" acknowledged while waiting for approval {approval['acked_at_approval']}; "
                  f"{time.monotonic() - t0:.1f}s")
        print("\n" + counts)
        assert len(on_source) + on_target == len(acked)    # no write was acknowledged anywhere else
        assert not lost, f"{counts}; first lost: {lost[:5]}"
        assert not late_on_source and source_changes == 0, counts
        assert not twice and counted and int(target.get("counter") or 0) >= max(counted), counts
        assert on_source and on_target, counts
        assert approval["refused_at_approval"] >= approval["refused_at_pause"], counts
        assert approval["acked_at_approval"] == approval["acked_at_pause"], counts  # nothing got through meanwhile
        assert all({u for _k, _v, u, _t in w.acked} == {source.url, target_url} for w in writers), counts
    finally:
        stop_rehearsal_target(plan.workdir)
        source.stop()


@pytest.mark.parametrize("version", ["redis-7.0", "redis-3.2"])
def test_a_write_slipped_in_during_the_approval_rolls_the_run_back(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                  version: str) -> None:
    """While the run waits for approval, someone lifts the pause (7.0: CLIENT UNPAUSE) or the refusal (3.2: CONFIG
    SET min-slaves-to-write 0) and the app writes. After the approval the fence's re-check sees the write: the run
    fails with the reason, nothing is switched, the source serves again with its original config, the write kept."""
    need(version)
    need("redis-7.0")
    source = LocalRedisServer(need(version), workdir=tmp_path / "source", config={"save": ""}).start()
    env_file = tmp_path / "app.env"
    original_env = f"APP_ENV=production\nREDIS_URL={source.url}\n"
    env_file.write_text(original_env)
    plan = _plan(tmp_path, moto_endpoint, bucket, source, env_file)
    with source.client() as r:
        r.set("before", "1")
        original = {str(k): str(v) for k, v in r.config_get("min-*").items()}
    outside: dict[str, Any] = {}

    def slip_a_write_in_then_approve() -> None:
        try:
            run_id = _paused_run_of(plan.migration_id)
            with source.client(socket_timeout=5) as r:
                if version == "redis-3.2":
                    r.config_set("min-slaves-to-write", "0")
                else:
                    r.execute_command("CLIENT", "UNPAUSE")
                outside["acked"] = r.set("slipped-in", "1")
            resume_run(run_id, "approve", "alice", "")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outside["error"] = exc

    decider = threading.Thread(target=slip_a_write_in_then_approve, daemon=True)
    try:
        decider.start()
        state = migrate_redis(plan, return_state=True)
        decider.join(30)
        assert "error" not in outside, outside.get("error")
        assert outside["acked"] is True
        assert state.is_failed(), state
        assert "the source took 1 write(s) after the snapshot" in (state.message or ""), state.message
        assert "nothing switched, rolled back" in (state.message or "")
        assert env_file.read_text() == original_env                     # config untouched
        with source.client(socket_timeout=2) as r:
            assert {str(k): str(v) for k, v in r.config_get("min-*").items()} == original
            assert r.get("slipped-in") == b"1" and r.set("after", "1")   # the write kept, the source serving
        assert Journal(plan.workdir).read().quiesce is None
    finally:
        stop_rehearsal_target(plan.workdir)
        source.stop()
