"""Which data path a run takes: staging.transfer, the source's version, what an earlier run left."""

from __future__ import annotations

import pytest

from elasticache_migrate.staging.paths import choose_path, fallback_path
from elasticache_migrate.staging.resume import Reuse, snapshot_still_current
from elasticache_migrate.state import ServerInfo, Snapshot, StagedObject
from tests.unit.staging.conftest import SHA, extracted

R70, R62, V81 = ServerInfo("redis", (7, 0, 15)), ServerInfo("redis", (6, 2, 14)), ServerInfo("valkey", (8, 1, 1))
SNAP = Snapshot(last_save_time=1_700_000_000, rdb_saves=3, seconds=0.5, changes_since_save=0)
OBJ = StagedObject("stage", "k", 1234, SHA, "e", 10, "REDIS", uploaded=True)


@pytest.mark.parametrize("transfer, server, path", [
    ("auto", R70, "sync"), ("auto", V81, "sync"), ("auto", R62, "staged"),
    ("sync", R62, "sync"),  # as asked: the sync step refuses the old source with a clear error
    ("stream", R70, "stream"), ("staged", R70, "staged"), ("staged", R62, "staged"),
])
def test_a_fresh_run_takes_the_path_the_plan_and_the_source_allow(transfer: str, server: ServerInfo,
                                                                   path: str) -> None:
    assert choose_path(transfer, server, None) == path  # type: ignore[arg-type]


@pytest.mark.parametrize("transfer", ["auto", "sync", "stream", "staged"])
def test_a_resumed_run_goes_on_from_what_the_earlier_run_left(transfer: str) -> None:
    assert choose_path(transfer, R70, Reuse(SNAP, extracted(), OBJ)) == "reused"  # type: ignore[arg-type]
    assert choose_path(transfer, R62, Reuse(SNAP, extracted(), None)) == "reuploaded"  # type: ignore[arg-type]


def test_only_auto_falls_back_to_staged_when_sync_is_refused() -> None:
    assert fallback_path("auto") == "staged"
    assert [fallback_path(t) for t in ("sync", "stream", "staged")] == [None, None, None]  # type: ignore[arg-type]


@pytest.mark.parametrize("info, current", [
    ({"rdb_bgsave_in_progress": 0, "rdb_changes_since_last_save": 0, "rdb_last_save_time": 1_700_000_000,
      "rdb_saves": 3}, True),
    ({"rdb_changes_since_last_save": 0, "rdb_last_save_time": 1_700_000_000}, True),          # before 7.0
    ({"rdb_bgsave_in_progress": 1, "rdb_changes_since_last_save": 0, "rdb_last_save_time": 1_700_000_000}, False),
    ({"rdb_changes_since_last_save": 2, "rdb_last_save_time": 1_700_000_000}, False),          # written since
    ({"rdb_changes_since_last_save": 0, "rdb_last_save_time": 1_700_000_100}, False),          # saved since
    ({"rdb_changes_since_last_save": 0, "rdb_last_save_time": 1_700_000_000, "rdb_saves": 4}, False),
])
def test_an_earlier_snapshot_is_reused_only_while_the_source_is_unchanged(info: dict[str, int],
                                                                          current: bool) -> None:
    assert snapshot_still_current(SNAP, info) is current
