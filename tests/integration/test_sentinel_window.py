"""Full runs of the flow against real Sentinel sets (Redis 3.2.6 and 7.0.15: a master, a replica, three
Sentinels; down-after 1 s, failover-timeout 5 s): a rehearsal target, a dotenv cutover, the approval answered
from a thread as a person would (tasks.approval.resume_run).

- a failover during the approval pause (the hold lifted from outside first) rolls back, naming it; the write
  the new master took is not lost and no node is left refusing writes;
- a completed run (a failover tried while paused is refused by the hold): stopping the old master afterwards
  promotes nothing, and no node accepts writes;
- after a rejected (rolled back) run, a failover and a failback: every master accepts writes, no node refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.quiesce import REFUSE_WRITES_REPLICAS, replica_config_names
from elasticache_migrate.source.sentinel_set import priority_setting
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.sample_data import load_sample
from flows.migrate import migrate_redis
from tasks.approval import resume_run, wait_for_paused_run
from tests.conftest import make_plan, need
from tests.support.outcomes import migrated
from tests.support.sentinel import SentinelSet, accepts_writes, wait_until

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]

VERSIONS = ["redis-3.2", "redis-7.0"]


def _decide(decision: str, before: Callable[[], None] | None = None) -> tuple[threading.Thread, list[BaseException]]:
    """Answer the approval pause from another thread, doing ``before`` first; errors are kept for the test."""
    errors: list[BaseException] = []

    def run() -> None:
        run_id = wait_for_paused_run(timeout=180)
        try:
            if before:
                before()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails on it
            errors.append(exc)
        resume_run(run_id, decision, "alice", "")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def _c(node: LocalRedisServer) -> redis.Redis:
    return node.client(decode_responses=True, socket_timeout=3)


def _refusing_nodes(sset: SentinelSet) -> list[str]:
    """Nodes whose min-*-to-write is the tool's refusal value (running ones), or whose config file holds it."""
    out = []
    name = replica_config_names(sset.binary.version_info)[0]
    for n in sset.nodes:
        if n.running:
            with _c(n) as c:
                if dict(c.config_get(name)).get(name) == str(REFUSE_WRITES_REPLICAS):
                    out.append(f"{n.port} (running)")
        if str(REFUSE_WRITES_REPLICAS) in n.config_file.read_text():
            out.append(f"{n.port} (config file)")
    return out


def _sentinels_see_priority(sset: SentinelSet, node: LocalRedisServer, value: str) -> bool:
    for s in sset.sentinels:
        with s.client() as c:
            seen = [dict(zip(x[::2], x[1::2], strict=True))
                    for x in c.execute_command("SENTINEL", "SLAVES", sset.master_name)]
        if not any(int(x["port"]) == node.port and x["slave-priority"] == value for x in seen):
            return False
    return True


def _plan(tmp_path: Path, moto_endpoint: str, bucket: str, sset: SentinelSet, app_env: Path) -> MigrationPlan:
    conn = sset.redis_connection()
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=conn["port"],
                     source={"kind": "host", "redis": conn},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 180})


def _load(node: LocalRedisServer) -> int:
    with _c(node) as r, node.client(db=1) as r1:
        return sum(load_sample(r, db1=r1).keys.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_failover_while_paused_rolls_back_naming_it(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                    app_env: Path, version: str) -> None:
    binary = need(version)
    with SentinelSet(binary, tmp_path / "set") as sset:
        old, (rep,) = sset.master_node(), sset.replica_nodes()
        _load(old)
        before = app_env.read_bytes()
        plan = _plan(tmp_path, moto_endpoint, bucket, sset, app_env)

        def failover() -> None:  # someone lifts the hold and fails the set over; the app writes to the new master
            with _c(rep) as c:
                c.config_set(priority_setting(binary.version_info), "100")
            wait_until("the Sentinels to see the lifted hold", lambda: _sentinels_see_priority(sset, rep, "100"), 20)
            sset.failover()
            with _c(rep) as c:
                c.rpush("queue:default", "job-after-failover")

        decider, errors = _decide("approve", before=failover)
        try:
            state = migrate_redis(plan, return_state=True)
            decider.join(10)
            assert not errors, errors
            assert state.is_failed()
            msg = state.message or ""
            assert f"Sentinel failed appmaster over from {old.host}:{old.port} to {rep.host}:{rep.port}" in msg, msg
            assert "while the source was paused: rolled back" in msg and "fence-source" in msg
            assert app_env.read_bytes() == before          # nothing switched
            with _c(rep) as c:                           # the write made to the new master is still there
                assert c.lrange("queue:default", 0, -1)[-1] == "job-after-failover"
            assert accepts_writes(rep)
            wait_until("the old master to rejoin as a replica",
                       lambda: _c(old).info("replication")["role"] == "slave", 30)
            assert _refusing_nodes(sset) == []            # restored on the node it was set on, file included
            j = Journal(plan.workdir).read()
            assert j.quiesce is None and j.sentinel_set is None
        finally:
            stop_rehearsal_target(plan.workdir)


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_run_leaves_nothing_to_promote(tmp_path: Path, moto_endpoint: str, bucket: str, app_env: Path,
                                                 version: str) -> None:
    binary = need(version)
    with SentinelSet(binary, tmp_path / "set") as sset:
        old, (rep,) = sset.master_node(), sset.replica_nodes()
        keys = _load(old)
        plan = _plan(tmp_path, moto_endpoint, bucket, sset, app_env)
        refused: list[str] = []

        def try_failover() -> None:  # the hold: the Sentinels refuse to promote the replica
            with sset.sentinels[0].client() as c:
                try:
                    c.execute_command("SENTINEL", "failover", sset.master_name)
                except redis.ResponseError as exc:
                    refused.append(str(exc))

        decider, errors = _decide("approve", before=try_failover)
        try:
            result = migrated(migrate_redis(plan))
            decider.join(10)
            assert not errors, errors
            assert refused and refused[0].startswith("NOGOODSLAVE")
            assert result.keys_verified == keys
            assert f"REDIS_URL={result.endpoint.url()}/0" in app_env.read_text()
            assert all(s.master_addr(sset.master_name) is None for s in sset.sentinels)

            sset.stop_node(old)                            # the usual decommissioning step
            time.sleep(1 + 5 + 2)                          # down-after + failover-timeout + margin
            with _c(rep) as c:
                assert c.info("replication")["role"] == "slave"
            assert not accepts_writes(rep)
            assert all(s.master_addr(sset.master_name) is None for s in sset.sentinels)
        finally:
            stop_rehearsal_target(plan.workdir)


@pytest.mark.parametrize("version", VERSIONS)
def test_after_a_rollback_a_failover_and_a_failback_every_master_takes_writes(
        tmp_path: Path, moto_endpoint: str, bucket: str, app_env: Path, version: str) -> None:
    binary = need(version)
    with SentinelSet(binary, tmp_path / "set") as sset:
        old, (rep,) = sset.master_node(), sset.replica_nodes()
        _load(old)
        plan = _plan(tmp_path, moto_endpoint, bucket, sset, app_env)
        decider, errors = _decide("reject")
        try:
            state = migrate_redis(plan, return_state=True)
            decider.join(10)
            assert not errors and state.is_cancelled()
            assert accepts_writes(old) and _refusing_nodes(sset) == []
            with _c(rep) as c:
                assert dict(c.config_get(priority_setting(binary.version_info))).popitem()[1] == "100"

            wait_until("the Sentinels to see the priority back", lambda: _sentinels_see_priority(sset, rep, "100"),
                       20)
            sset.failover(settle=True)
            assert accepts_writes(rep)
            wait_until("the failback", lambda: sset.failover(settle=True), 40, interval=1)
            assert sset.current_master() == (old.host, old.port)
            assert accepts_writes(old)
            assert _refusing_nodes(sset) == []
        finally:
            stop_rehearsal_target(plan.workdir)

