"""The decisions of the sync transfer (which path, whether to BGSAVE first, what the snapshot record is, whether
the source restarted since its pause). No server."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.errors import SnapshotError
from elasticache_migrate.source.sync_strategy import (
    restarted_since_pause,
    sync_strategy,
    synced_snapshot,
    transfer_mode,
)
from elasticache_migrate.state import QuiesceState, ServerInfo, Snapshot, SyncSource, version_tuple

# ---------------------------------------------------------------------------------------------- decisions

@pytest.mark.parametrize("setting, server, mode", [
    ("auto", "redis 7.0.15", "sync"), ("auto", "valkey 8.1.8", "sync"), ("auto", "redis 6.2.14", "staged"),
    ("auto", "redis 3.2.6", "staged"), ("auto", "garbled", "staged"), ("sync", "redis 6.2.14", "sync"),
    ("stream", "redis 7.0.15", "stream"), ("staged", "valkey 8.1.8", "staged"),
])
def test_transfer_mode(setting: str, server: str, mode: str) -> None:
    flavor, _, version = server.partition(" ")
    assert transfer_mode(setting, ServerInfo(flavor, version_tuple(version))) == mode


def test_server_info_from_info_server() -> None:
    valkey = ServerInfo.from_info({"redis_version": "7.2.4", "valkey_version": "8.1.8"})
    assert valkey == ServerInfo("valkey", (8, 1, 8))
    assert ServerInfo.from_info({"redis_version": "7.0"}) == ServerInfo("redis", (7, 0, 0))
    assert ServerInfo.from_info({}) == ServerInfo("redis", (0, 0, 0))
    assert str(ServerInfo("redis", (3, 2, 6))) == "redis 3.2.6"


DEFAULTS_70 = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "5", "save": "3600 1 300 100 60 10000"}


@pytest.mark.parametrize("changes, config, at_risk, presave, tune", [
    # save rules and changes since the last save: the master is asked for a disk-based SYNC (its own BGSAVE)
    (42, DEFAULTS_70, True, False, {"repl-diskless-sync": "no"}),
    # nothing to save (rules need >= 1 change, and writes are paused), or no rules: diskless, without the delay
    (0, DEFAULTS_70, False, False, {"repl-diskless-sync-delay": "0"}),
    (42, {**DEFAULTS_70, "save": ""}, False, False, {"repl-diskless-sync-delay": "0"}),
    # delay already 0: nothing to change
    (0, {**DEFAULTS_70, "repl-diskless-sync-delay": "0"}, False, False, {}),
    # disk-based master: its SYNC is a BGSAVE already
    (42, {**DEFAULTS_70, "repl-diskless-sync": "no"}, False, False, {}),
    # CONFIG unavailable: rules and framing unknown; with changes a BGSAVE first, nothing to tune
    (42, dict.fromkeys(DEFAULTS_70), True, True, {}),
    (0, dict.fromkeys(DEFAULTS_70), False, False, {}),
])
def test_sync_strategy(changes: int, config: dict[str, str | None], at_risk: bool, presave: bool,
                       tune: dict[str, str]) -> None:
    s = sync_strategy(changes, config)
    assert (s.at_risk, s.presave, s.tune) == (at_risk, presave, tune)
    assert ("void verify's proof" in s.why) is at_risk


BASE = Snapshot(last_save_time=1000, rdb_saves=3, seconds=0.0, changes_since_save=42)


def info(**kw: int) -> dict[str, int]:
    return {"rdb_last_save_time": 1000, "rdb_saves": 3, "rdb_changes_since_last_save": 42, **kw}


def test_a_diskless_snapshot_keeps_the_record_from_before_sync() -> None:
    snap = synced_snapshot("diskless", BASE, info(), 2.5)
    assert (snap.last_save_time, snap.rdb_saves, snap.changes_since_save, snap.seconds) == (1000, 3, 42, 2.5)


@pytest.mark.parametrize("after", [info(rdb_saves=4, rdb_last_save_time=1010), info(rdb_changes_since_last_save=43)])
def test_a_save_or_a_write_during_a_diskless_transfer_is_retried(after: dict[str, int]) -> None:
    with pytest.raises(SnapshotError, match="during the transfer") as e:
        synced_snapshot("diskless", BASE, after, 1.0)
    assert e.value.retryable


def test_a_disk_based_snapshot_is_the_masters_bgsave() -> None:
    snap = synced_snapshot("disk", BASE, info(rdb_saves=4, rdb_last_save_time=1010, rdb_changes_since_last_save=0), 1)
    assert (snap.last_save_time, snap.rdb_saves, snap.changes_since_save) == (1010, 4, 0)
    with pytest.raises(SnapshotError, match="no new save"):
        synced_snapshot("disk", BASE, info(), 1.0)


QUIESCED = QuiesceState(mode="client-pause-write", paused_at=10_000.0, pause_expires_at=10_600.0,
                        server=ServerInfo("redis", (7, 0, 15)))


@pytest.mark.parametrize("server, seen, now, restarted", [
    ({"run_id": "a" * 40, "uptime_in_seconds": 5000}, None, 10_100.0, None),             # up since long before
    ({"run_id": "b" * 40, "uptime_in_seconds": 30}, None, 10_100.0, "up 30s"),           # started after the pause
    ({"run_id": "b" * 40, "uptime_in_seconds": 1}, {"paused_at": 10_000.0, "run_id": "a" * 40}, 10_001.0,
     "run_id changed"),                                                                  # a restart within seconds
    ({"run_id": "a" * 40, "uptime_in_seconds": 1}, {"paused_at": 10_000.0, "run_id": "a" * 40}, 10_001.0, None),
    ({"run_id": "b" * 40, "uptime_in_seconds": 1}, {"paused_at": 9_000.0, "run_id": "a" * 40}, 10_001.0, None),
])
def test_restarted_since_pause(server: dict[str, Any], seen: dict[str, Any] | None, now: float,
                               restarted: str | None) -> None:
    why = restarted_since_pause(QUIESCED, server, SyncSource(**seen) if seen else None, now)
    assert (why is None) if restarted is None else (why is not None and restarted in why)
    assert restarted_since_pause(None, server, SyncSource(**seen) if seen else None, now) is None  # never quiesced
