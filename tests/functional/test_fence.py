"""The fence at cutover and the pause's renewal (elasticache_migrate.source.fence / .quiesce) against real Redis
3.2, 6.2 and 7.0 servers, with redis-py clients as an application has them (defaults: no socket timeout, retries
on a lost connection). No moto, no Prefect: the engine functions themselves.

What a user would notice: a write held by the pause never lands after the fence (it fails with NOREPLICAS), a
new write is refused at once, the app's connections are closed but this tool's own (``elasticache-migrate:*``,
e.g. the window lock) are not, the pause lasts as long as the renewal runs and ends after it stops, a source
that took a write since the snapshot is caught before any switch, and a rollback puts the original config back.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.errors import SourceMoved
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.window_checks import window_findings
from elasticache_migrate.source.connection import server_info, source_client
from elasticache_migrate.source.fence import fence
from elasticache_migrate.source.quiesce import PauseRenewal, finish, pause, unpause
from elasticache_migrate.source.snapshot import bgsave
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import make_plan, need

log = logging.getLogger("test-fence")
VERSIONS = ["redis-3.2", "redis-6.2", "redis-7.0"]


def _plan(tmp_path: Path, port: int, **over: Any) -> MigrationPlan:
    """A plan for the engine alone: nothing here talks to AWS, so the endpoint is never dialled."""
    over.setdefault("quiesce", {"require_no_clients": False, "max_pause_seconds": 600})
    return make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=port, **over)


def _replica_config(r: redis.Redis) -> dict[str, str]:
    """min-replicas-* (5.0+; CONFIG GET also lists the min-slaves-* aliases) or min-slaves-* (older)."""
    got = {str(k): str(v) for k, v in r.config_get("min-*").items()}
    prefix = "min-replicas" if "min-replicas-to-write" in got else "min-slaves"
    return {k: v for k, v in got.items() if k in (f"{prefix}-to-write", f"{prefix}-max-lag")}


class _Write:
    """One SET from an application client with redis-py's defaults (no socket timeout), in a thread."""

    def __init__(self, server: LocalRedisServer, key: str) -> None:
        self.client = server.client()                  # as `Redis(host=, port=)`: waits as long as it takes
        self.client.ping()
        self.key, self.error = key, ""
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _Write:
        self.thread.start()
        time.sleep(0.3)
        return self

    def _run(self) -> None:
        try:
            self.result = self.client.set(self.key, "1")
        except redis.RedisError as exc:
            self.error = str(exc)


@pytest.mark.parametrize("binary", VERSIONS)
def test_fence_refuses_every_write_closes_app_connections_and_rollback_lifts_it(tmp_path: Path,
                                                                                binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        with src.client() as r:
            r.set("before", "1")
            original = _replica_config(r)
        state = pause(plan, log=log)
        blocks = state.mode == "client-pause-write"
        assert blocks == (binary != "redis-3.2")
        snapshot = bgsave(source_client(plan), 30, log)
        held = _Write(src, "held").start()             # blocked by the pause (6.2+), refused at once (3.2)
        assert held.thread.is_alive() == blocks
        idle = src.client(client_name="celery-worker")
        idle.ping()
        lock = src.client(client_name="elasticache-migrate:lock:other")  # another helper's lock connection
        lock.ping()

        fenced = fence(plan, snapshot, log=log)

        held.thread.join(10)
        assert not held.thread.is_alive() and held.result is None and "NOREPLICAS" in held.error
        assert fenced.unpaused == blocks and fenced.clients_closed >= 2 and "rdb_changes_since_last_save=0" in \
            fenced.proof
        journaled = Journal(plan.workdir).read().quiesce
        assert journaled == fenced.state and journaled.fenced_at and journaled.saved_config == original
        names = [c["name"] for c in lock.client_list()]
        assert "celery-worker" not in names and "elasticache-migrate:lock:other" in names
        assert lock.get("before") == b"1"              # reads go on, our connection lives
        with src.client(socket_timeout=2, retry=Retry(NoBackoff(), 0)) as app:
            t0 = time.monotonic()
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                app.set("after-fence", "1")             # refused at once, not held: the pause is gone
            assert time.monotonic() - t0 < 1
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                idle.set("reconnected", "1")            # the killed pool reconnects and is refused too
            assert app.exists("held", "after-fence", "reconnected") == 0

        unpause(plan, log=log)                          # the rollback: original values back, writes land again
        with src.client() as r:
            assert _replica_config(r) == original
            assert r.set("after-rollback", "1")
        assert Journal(plan.workdir).read().quiesce is None
        for c in (held.client, idle, lock):
            c.close()


@pytest.mark.parametrize("binary", ["redis-3.2", "redis-7.0"])
def test_after_a_verified_cutover_the_fence_stays_and_finish_says_how_to_lift_it(tmp_path: Path,
                                                                                 binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        pause(plan, log=log)
        fenced = fence(plan, bgsave(source_client(plan), 30, log), log=log)
        said = finish(plan, fenced.state, log=log)
        prefix = "min-slaves" if binary == "redis-3.2" else "min-replicas"
        assert f"CONFIG SET {prefix}-to-write 0; CONFIG SET {prefix}-max-lag 10" in said
        assert Journal(plan.workdir).read().quiesce is None
        time.sleep(0.5)
        with src.client(socket_timeout=2, retry=Retry(NoBackoff(), 0)) as app:
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                app.set("straggler", "1")               # no expiry: still refused


@pytest.mark.parametrize("binary", ["redis-3.2", "redis-7.0"])
def test_a_write_after_the_snapshot_stops_the_fence_and_the_rollback_restores_the_original_config(
        tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        with src.client() as r:
            original = _replica_config(r)
        state = pause(plan, log=log)
        snapshot = bgsave(source_client(plan), 30, log)
        with src.client() as outside:                   # someone lifts the pause / the refusal from outside
            if state.mode == "client-pause-write":
                outside.execute_command("CLIENT", "UNPAUSE")
            else:
                outside.config_set("min-slaves-to-write", "0")
            assert outside.set("slipped-in", "1")
        with pytest.raises(SourceMoved, match=r"the source took 1 write\(s\) after the snapshot") as e:
            fence(plan, snapshot, log=log)
        assert e.value.step == "fence-source" and "nothing switched, rolled back" in e.value.message
        assert Journal(plan.workdir).read().quiesce.saved_config == original  # type: ignore[union-attr]
        unpause(plan, log=log)
        with src.client() as r:
            assert _replica_config(r) == original and r.set("after-rollback", "1")


@pytest.mark.parametrize("binary", ["redis-6.2", "redis-7.0"])
def test_the_pause_lasts_while_it_is_renewed_and_ends_after_the_renewal_stops(tmp_path: Path, binary: str) -> None:
    """A 2 s pause (below the plan's minimum of 30 s, set past validation to keep the test short) renewed every
    0.5 s holds a write for 3 s; once the renewal stops the pause ends within its 2 s."""
    with LocalRedisServer(need(binary), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        plan = plan.model_copy(update={"quiesce": plan.quiesce.model_copy(update={"max_pause_seconds": 2})})
        state = pause(plan, log=log)
        renewal = PauseRenewal(plan, state, log, interval=0.5).start()
        try:
            held = _Write(src, "held").start()
            time.sleep(3)
            assert held.thread.is_alive(), "the write went through: the pause expired under a live run"
            expires = Journal(plan.workdir).read().quiesce.pause_expires_at  # type: ignore[union-attr]
            assert expires is not None and expires > state.pause_expires_at + 2  # type: ignore[operator]
        finally:
            renewal.stop()
        assert renewal.renewals >= 4 and renewal.failures == 0
        stopped = time.monotonic()
        held.thread.join(5)
        assert held.result is True and time.monotonic() - stopped <= 2.5  # the dead run's pause ran out
        n = renewal.renewals
        time.sleep(0.7)
        assert renewal.renewals == n                    # stopped means stopped
        held.client.close()
        unpause(plan, log=log)


# ---- preflight: the fence needs CONFIG SET of the replica settings; block mode needs 6.2 ------------------------

@pytest.mark.parametrize("binary", ["redis-3.2", "redis-7.0"])
def test_preflight_blocks_when_config_is_renamed_and_changes_nothing(tmp_path: Path, binary: str) -> None:
    with LocalRedisServer(need(binary), workdir=tmp_path / "source",
                          config={"save": "", "rename-command": 'CONFIG ""'}) as src:
        plan = _plan(tmp_path, src.port)
        r = source_client(plan)
        server = server_info(r)
        found = window_findings(plan, r, server)
        block = [f for f in found if f.severity == "block"]
        assert len(block) == 1 and block[0].check == "fence" and "CONFIG GET" in block[0].seen
        assert "could not be fenced at cutover" in block[0].seen and "+config|set" in block[0].todo
        warn = [f for f in found if f.severity == "warn"]
        assert bool(warn) == (binary == "redis-3.2")      # block mode impossible below 6.2: said, refuse used
        assert r.set("k", "v")                            # nothing changed


def test_preflight_blocks_an_acl_user_without_config_set_and_passes_one_with_it(
        tmp_path: Path, redis70: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENCE_TEST_PW", "s3cret")
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        with src.client() as admin:
            admin.execute_command("ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all", "-config", "+config|get")
            admin.execute_command("ACL", "SETUSER", "migrator", "on", ">s3cret", "~*", "+@all")
            before = _replica_config(admin)
        for user, blocks in (("app", True), ("migrator", False)):
            plan = _plan(tmp_path, src.port, source={"kind": "host", "redis": {
                "host": "127.0.0.1", "port": src.port, "username": user, "password_secret": "env:FENCE_TEST_PW"}})
            r = source_client(plan)
            fence_found = [f for f in window_findings(plan, r, server_info(r)) if f.check == "fence"]
            assert [f.severity for f in fence_found] == (["block"] if blocks else ["info"]), fence_found
            if blocks:
                assert "CONFIG SET min-replicas-to-write is refused" in fence_found[0].seen
        with src.client() as admin:
            assert _replica_config(admin) == before       # the check set the value it had: nothing changed


def test_a_pause_that_expired_with_nothing_renewing_it_is_caught_by_the_fence(tmp_path: Path, redis70: Any) -> None:
    """The run's renewal died (a 2 s pause, past validation to keep the test short, never renewed): the app's
    held write lands when the pause runs out; the fence names the expiry and refuses to go on."""
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        plan = plan.model_copy(update={"quiesce": plan.quiesce.model_copy(update={"max_pause_seconds": 2})})
        pause(plan, log=log)
        snapshot = bgsave(source_client(plan), 30, log)
        held = _Write(src, "held").start()
        held.thread.join(5)
        assert held.result is True                     # acknowledged by the source after the pause ran out
        with pytest.raises(SourceMoved, match=r"took 1 write\(s\) after the snapshot \(the write pause expired at "):
            fence(plan, snapshot, log=log)
        unpause(plan, log=log)
        held.client.close()


def test_preflight_warns_about_lua_scripts_on_a_source_before_6_2(tmp_path: Path) -> None:
    with LocalRedisServer(need("redis-3.2"), workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port)
        r = source_client(plan)
        assert not [f for f in window_findings(plan, r, server_info(r)) if "Lua scripts" in f.seen]
        with src.client() as app:
            app.eval("return redis.call('set', KEYS[1], '1')", 1, "job:1")
        (warn,) = [f for f in window_findings(plan, r, server_info(r)) if "Lua scripts" in f.seen]
        assert warn.severity == "warn" and "eval 1 calls" in warn.seen


@pytest.mark.parametrize("verified", [True, False])
def test_a_run_killed_after_its_verified_cutover_is_finished_not_rolled_back(tmp_path: Path, redis70: Any,
                                                                             verified: bool) -> None:
    """The crash backstop (and any rollback) after verify-cutover passed: moving the app back to the fenced old
    source would lose the writes the target took since; before verify-cutover passed, the rollback restores."""
    from elasticache_migrate.cutover.switch import mark_verified, switch
    from elasticache_migrate.errors import RunCancelled
    from elasticache_migrate.state import Endpoint
    from flows.migrate import _roll_back

    env = tmp_path / "app.env"
    env.write_text("REDIS_URL=redis://old:6379/0\n")
    with LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": ""}) as src:
        plan = _plan(tmp_path, src.port, cutover={"backend": "dotenv", "dotenv_path": str(env)})
        pause(plan, log=log)
        fence(plan, bgsave(source_client(plan), 30, log), log=log)
        switch(plan, Endpoint("new.example", 6380), log)
        if verified:
            mark_verified(plan)

        _roll_back(plan, RunCancelled("the run's process was killed"), None, direct=True, log=log)

        assert Journal(plan.workdir).read().quiesce is None
        with src.client(socket_timeout=2, retry=Retry(NoBackoff(), 0)) as app:
            if verified:
                assert "new.example:6380" in env.read_text()
                with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                    app.set("straggler", "1")       # still fenced: nobody reads the old source any more
            else:
                assert env.read_text() == "REDIS_URL=redis://old:6379/0\n"
                assert app.set("served-again", "1")
