"""The snapshot engine's pure part: when the BGSAVE started after a given INFO persistence has finished, and the
poll intervals. No server."""

from __future__ import annotations

import itertools

import pytest

from elasticache_migrate.errors import SnapshotError
from elasticache_migrate.source.snapshot import bgsave_finished, poll_delays


def test_bgsave_in_progress_is_not_finished() -> None:
    before = {"rdb_saves": 3, "rdb_last_save_time": 100}
    info = {"rdb_bgsave_in_progress": 1, "rdb_saves": 4, "rdb_last_save_time": 200, "rdb_last_bgsave_status": "ok"}
    assert bgsave_finished(before, info) is False


def test_bgsave_error_raises_with_remedy() -> None:
    info = {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "err", "rdb_saves": 3}
    with pytest.raises(SnapshotError) as ei:
        bgsave_finished({"rdb_saves": 3}, info)
    assert "rdb_last_bgsave_status:err" in ei.value.message
    assert "disk space" in ei.value.remedy and "overcommit" in ei.value.remedy
    assert ei.value.step == "bgsave-wait"


def test_bgsave_done_when_rdb_saves_grew() -> None:
    before = {"rdb_saves": 3, "rdb_last_save_time": 100}
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok", "rdb_saves": 4,
                                    "rdb_last_save_time": 100}) is True
    # same count: the save we asked for has not happened yet, even if LASTSAVE moved (someone else's save)
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok", "rdb_saves": 3,
                                    "rdb_last_save_time": 101}) is False


def test_bgsave_old_server_uses_last_save_time() -> None:
    before = {"rdb_bgsave_in_progress": 0, "rdb_last_save_time": 1_700_000_000}  # Redis < 7: no rdb_saves
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok",
                                    "rdb_last_save_time": 1_700_000_000}) is False
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok",
                                    "rdb_last_save_time": 1_700_000_001}) is True


def test_poll_delays_start_fast_and_settle_at_the_cap() -> None:
    got = list(itertools.islice(poll_delays(), 8))
    assert got[0] == 0.05 and got == sorted(got) and got[-1] == 0.25 and max(got) == 0.25
    assert list(itertools.islice(poll_delays(1.0, 2.0), 3)) == [1.0, 1.5, 2.0]
