"""The set held still, a change of master caught, every change undone on its node, and the old set decommissioned,
against real Sentinel sets (Redis 3.2.6 and 7.0.15: a master, a replica, three Sentinels; down-after 1 s).

The window refuses writes (``during_window: refuse``) on both versions: that is the setting a failover would
CONFIG REWRITE into a node's redis.conf.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from elasticache_migrate.errors import MasterChanged
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.decommission import retire
from elasticache_migrate.source.quiesce import REFUSE_WRITES_REPLICAS, pause, replica_config_names, unpause
from elasticache_migrate.source.sentinel_set import check_master, hold_set, priority_setting
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import make_plan, need
from tests.support.sentinel import SentinelSet, accepts_writes, wait_until

pytestmark = pytest.mark.slow

VERSIONS = ["redis-3.2", "redis-7.0"]


def _plan(tmp_path: Path, moto_endpoint: str, bucket: str, sset: SentinelSet) -> MigrationPlan:
    conn = sset.redis_connection()
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=conn["port"],
                     source={"kind": "host", "redis": conn},
                     quiesce={"during_window": "refuse", "require_no_clients": False, "drain_timeout_seconds": 5})


def _c(node: LocalRedisServer) -> redis.Redis:
    return node.client(decode_responses=True, socket_timeout=3)


def _config(node: LocalRedisServer, name: str) -> str:
    with _c(node) as c:
        return str(dict(c.config_get(name)).get(name))


def _sentinels_see_priority(sset: SentinelSet, node: LocalRedisServer, value: str) -> bool:
    for s in sset.sentinels:
        with s.client() as c:
            seen = [dict(zip(x[::2], x[1::2], strict=True)) for x in c.execute_command("SENTINEL", "SLAVES",
                                                                                       sset.master_name)]
        if not any(int(x["port"]) == node.port and x["slave-priority"] == value for x in seen):
            return False
    return True


@pytest.mark.parametrize("version", VERSIONS)
def test_held_set_refuses_a_failover_and_is_given_back(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                       version: str) -> None:
    """Quiesce holds the replica at priority 0: SENTINEL failover is refused (NOGOODSLAVE), the master stays,
    the checks pass; the rollback gives the master its writes and the replica its priority back."""
    binary = need(version)
    setting = priority_setting(binary.version_info)
    with SentinelSet(binary, tmp_path / "set") as sset:
        plan = _plan(tmp_path, moto_endpoint, bucket, sset)
        master, (replica,) = sset.master_node(), sset.replica_nodes()
        state = pause(plan)
        assert state.node is not None and (state.node.host, state.node.port) == (master.host, master.port)
        hold = hold_set(plan, state.node)
        assert hold is not None and [c.node.port for c in hold.changes] == [replica.port]
        assert _config(replica, setting) == "0" and not accepts_writes(master, "probe-write")
        assert {tuple(s) for s in hold.sentinels} == set(sset.sentinel_addresses)
        again = hold_set(plan, state.node)  # a re-run after a crash: the value from before the first run is kept
        assert again is not None and [(c.node.port, c.previous) for c in again.changes] == [(replica.port, "100")]

        check_master(plan, "verify", confirm=True)  # waits until every Sentinel reports priority 0
        held = Journal(plan.workdir).read().sentinel_set
        assert held is not None and held.confirmed
        with sset.sentinels[1].client() as c, pytest.raises(redis.ResponseError, match="NOGOODSLAVE"):
            c.execute_command("SENTINEL", "failover", sset.master_name)
        time.sleep(1.5)
        assert sset.current_master() == (master.host, master.port)
        check_master(plan, "fence-source")  # still the same master: no error

        to_write = replica_config_names(binary.version_info)[0]
        with _c(replica) as c:  # the refusal left on another node (an older version's rollback after a failover)
            c.config_set(to_write, str(REFUSE_WRITES_REPLICAS))
        unpause(plan)
        assert accepts_writes(master, "probe-write") and _config(replica, setting) == "100"
        assert _config(replica, to_write) == _config(master, to_write) == "0"  # every node of the set is checked
        journal = Journal(plan.workdir).read()
        assert journal.quiesce is None and journal.sentinel_set is None


@pytest.mark.parametrize("version", VERSIONS)
def test_failover_anyway_is_caught_and_undone_on_each_node(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                           version: str) -> None:
    """Someone lifts the hold and fails the set over while it is paused: the check names the failover; the
    rollback restores the refusal on the node it was set on (now a replica, its redis.conf rewritten by
    Sentinel) and persists that; after a failback and a restart of every node, every master accepts writes."""
    binary = need(version)
    setting = priority_setting(binary.version_info)
    to_write = replica_config_names(binary.version_info)[0]
    with SentinelSet(binary, tmp_path / "set") as sset:
        plan = _plan(tmp_path, moto_endpoint, bucket, sset)
        old, (rep,) = sset.master_node(), sset.replica_nodes()
        state = pause(plan)
        assert state.node is not None
        hold_set(plan, state.node)

        with _c(rep) as c:  # from outside: the hold lifted by hand
            c.config_set(setting, "100")
        wait_until("the Sentinels to see the priority", lambda: _sentinels_see_priority(sset, rep, "100"), 20)
        new = sset.failover(settle=True)
        assert new == (rep.host, rep.port)
        wait_until("Sentinel's rewrite of the old master's config",
                   lambda: str(REFUSE_WRITES_REPLICAS) in old.config_file.read_text(), 20)

        with pytest.raises(MasterChanged) as caught:
            check_master(plan, "fence-source")
        assert f"Sentinel failed appmaster over from {old.host}:{old.port} to {rep.host}:{rep.port}" in str(
            caught.value)
        assert "while the source was paused: rolled back" in str(caught.value)

        unpause(plan)  # the rollback
        assert _config(old, to_write) == "0" and _config(rep, to_write) == "0"
        assert str(REFUSE_WRITES_REPLICAS) not in old.config_file.read_text()
        assert accepts_writes(rep, "probe-write")  # the master now

        # failback (retried: a Sentinel picks a replica only once it has read its INFO since it rejoined)
        wait_until("the failback", lambda: sset.failover(settle=True), 40, interval=1)
        assert sset.current_master() == (old.host, old.port)
        assert accepts_writes(old, "probe-write")
        for node in sset.nodes:  # a restart reads each node's config file as Sentinel and the rollback left it
            sset.stop_node(node)
            sset.start_node(node)
        sset.wait_settled()
        assert accepts_writes(sset.master_node(), "probe-write")
        assert all(_config(n, to_write) == "0" for n in sset.nodes)


@pytest.mark.parametrize("version", VERSIONS)
def test_decommission_leaves_nothing_to_promote(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                version: str) -> None:
    """After the cutover: the Sentinels stop monitoring the old set; stopping the old master (waiting past
    down-after + a failover) promotes nothing, and no node accepts writes."""
    binary = need(version)
    with SentinelSet(binary, tmp_path / "set") as sset:
        plan = _plan(tmp_path, moto_endpoint, bucket, sset)
        old, (rep,) = sset.master_node(), sset.replica_nodes()
        state = pause(plan)
        assert state.node is not None
        hold_set(plan, state.node)
        said = retire(plan, state)
        assert "3 Sentinel(s) no longer monitor it" in said and "SENTINEL MONITOR appmaster" in said
        assert all(s.master_addr(sset.master_name) is None for s in sset.sentinels)
        assert Journal(plan.workdir).read().sentinel_set is None

        sset.stop_node(old)
        time.sleep(1 + 5 + 1)  # down-after-milliseconds + failover-timeout + a margin
        with _c(rep) as c:
            assert c.info("replication")["role"] == "slave"
        assert not accepts_writes(rep, "probe-write")
        assert all(s.master_addr(sset.master_name) is None for s in sset.sentinels)
        with _c(rep) as c:  # even promoted by hand it refuses writes
            c.execute_command("SLAVEOF", "NO", "ONE")
        assert not accepts_writes(rep, "probe-write")
