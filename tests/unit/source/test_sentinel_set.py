"""The Sentinel hold's and the decommission's pure decisions: which setting holds a replica, when the master
changed (and how the run says so), when a restored value is persisted, what a Sentinel monitored and how to
monitor it again, that a Sentinel-managed master is never CLIENT PAUSEd. No server."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import validate_plan
from elasticache_migrate.preflight.window_checks import window_mode_findings
from elasticache_migrate.source.decommission import monitor_commands, monitor_record
from elasticache_migrate.source.quiesce import pause_mode, refusing
from elasticache_migrate.source.sentinel_set import (
    ReplicaSeen,
    changed_message,
    master_change,
    pairs,
    priority_setting,
    should_persist,
)
from elasticache_migrate.state import MonitorRecord, NodeChange, NodeRef, QuiesceState, ServerInfo, SetHold

HELD = NodeRef("10.0.0.11", 6379, "a" * 40)
S1, S2 = ("10.0.0.21", 26379), ("10.0.0.22", 26379)


def test_priority_setting_by_version() -> None:
    assert priority_setting((3, 2, 6)) == "slave-priority"
    assert priority_setting((4, 0, 14)) == "slave-priority"
    assert priority_setting((5, 0, 0)) == priority_setting((7, 0, 15)) == "replica-priority"


def test_pairs_reads_flat_and_map_replies() -> None:
    flat = [b"name", b"appmaster", b"ip", b"10.0.0.11", b"port", b"6379"]
    assert pairs(flat) == {"name": "appmaster", "ip": "10.0.0.11", "port": "6379"}
    assert pairs({b"quorum": 2}) == {"quorum": "2"}
    seen = ReplicaSeen.from_reply(pairs(["ip", "10.0.0.12", "port", "6380", "runid", "r", "flags", "slave",
                                         "slave-priority", "0"]))
    assert (seen.address, seen.priority) == (("10.0.0.12", 6380), "0")


def test_master_unchanged() -> None:
    assert master_change(HELD, [(S1, ("10.0.0.11", 6379)), (S2, ("10.0.0.11", 6379))], "master", HELD.run_id) is None


def test_a_failover_is_named_with_the_new_master() -> None:
    got = master_change(HELD, [(S1, ("10.0.0.12", 6379)), (S2, ("10.0.0.12", 6379))], "slave", HELD.run_id)
    assert got is not None and got[1] == ("10.0.0.12", 6379)
    assert "10.0.0.21:26379, 10.0.0.22:26379" in got[0]
    msg = changed_message("appmaster", HELD, got[0], got[1], "fence-source", 1_796_220_000.0)
    assert msg.startswith("Sentinel failed appmaster over from 10.0.0.11:6379 to 10.0.0.12:6379, seen at ")
    assert "UTC in fence-source, while the source was paused: rolled back" in msg


def test_one_sentinel_that_disagrees_is_enough() -> None:
    got = master_change(HELD, [(S1, ("10.0.0.11", 6379)), (S2, ("10.0.0.12", 6379))], "master", HELD.run_id)
    assert got is not None and "10.0.0.22:26379" in got[0] and got[1] == ("10.0.0.12", 6379)


@pytest.mark.parametrize(("role", "run_id", "words"), [
    (None, None, "does not answer"),
    ("master", "b" * 40, "restarted (run_id aaaaaaaa → bbbbbbbb)"),
    ("slave", "a" * 40, "is slave now, no longer master"),
])
def test_the_master_itself_changed(role: str | None, run_id: str | None, words: str) -> None:
    got = master_change(HELD, [(S1, ("10.0.0.11", 6379))], role, run_id)
    assert got is not None and words in got[0] and got[1] is None
    assert changed_message("appmaster", HELD, got[0], None, "verify", 0).startswith("the master of appmaster changed")


@pytest.mark.parametrize(("config_file", "failover", "restarted", "persist"), [
    (True, True, False, True), (True, False, True, True), (True, False, False, False),
    (False, True, True, False),  # no config file: nothing to persist to
])
def test_persist_only_when_the_file_may_hold_our_value(config_file: bool, failover: bool, restarted: bool,
                                                        persist: bool) -> None:
    assert should_persist(config_file, failover, restarted) is persist


def test_refusing_reads_the_tool_value() -> None:
    assert refusing((3, 2, 6), {"min-slaves-to-write": "1000000"})
    assert not refusing((7, 0, 15), {"min-replicas-to-write": "0"})
    assert not refusing((7, 0, 15), {"min-slaves-to-write": "1000000"})  # 7.0 reads min-replicas-*


def test_a_sentinel_managed_master_is_refused_not_paused() -> None:
    assert pause_mode((7, 0, 15)) == "client-pause-write"
    assert pause_mode((7, 0, 15), sentinel=True) == "refuse-writes"
    plan = validate_plan({"migration_id": "orders-2024", "source": {"kind": "host", "redis": {
        "host": "10.0.0.21", "port": 26379, "sentinel_master": "appmaster"}},
        "staging": {"bucket": "my-staging"}, "target": {"replication_group_id": "app-cache"}})
    (finding,) = window_mode_findings(plan, ServerInfo("redis", (7, 0, 15)))
    assert "Sentinel-managed master" in finding.seen and "fail it over" in finding.seen


def test_monitor_record_and_commands() -> None:
    fields = {"name": "appmaster", "ip": "10.0.0.11", "port": "6379", "quorum": "2", "flags": "master",
              "down-after-milliseconds": "30000", "failover-timeout": "180000", "parallel-syncs": "1"}
    rec = monitor_record(S1, fields)
    assert rec == MonitorRecord(S1, "appmaster", "10.0.0.11", 6379, 2, {"down-after-milliseconds": "30000",
                                                                        "failover-timeout": "180000",
                                                                        "parallel-syncs": "1"})
    cmds = monitor_commands(rec, auth=True)
    assert cmds[0] == ("SENTINEL", "MONITOR", "appmaster", "10.0.0.11", "6379", "2")
    assert ("SENTINEL", "SET", "appmaster", "failover-timeout", "180000") in cmds
    assert cmds[-1] == ("SENTINEL", "SET", "appmaster", "auth-pass", "<password>")  # never the password itself


def test_the_hold_round_trips_through_the_journal(tmp_path: Path) -> None:
    hold = SetHold("appmaster", HELD, (S1, S2), (NodeChange(NodeRef("10.0.0.12", 6379, "c" * 40),
                                                            "slave-priority", "100", "0"),),
                   removed=(MonitorRecord(S1, "appmaster", "10.0.0.11", 6379, 2, {"parallel-syncs": "1"}),))
    q = QuiesceState("refuse-writes", 1.0, None, ServerInfo("redis", (3, 2, 6)), {"min-slaves-to-write": "0"},
                     node=HELD)
    Journal(tmp_path).update(sentinel_set=hold, quiesce=q)
    got = Journal(tmp_path).read()
    assert got.sentinel_set == hold and got.quiesce == q
    assert "\"sentinel-set\"" in (tmp_path / "journal.json").read_text()
