"""The proof that the source took no write after the snapshot (verify and the fence's re-check), from INFO
persistence values alone. No server."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.state import Snapshot
from elasticache_migrate.verify.run import source_verdict, writes_since_snapshot

SNAP = Snapshot(last_save_time=1_700_000_000, rdb_saves=4, seconds=0.2, changes_since_save=0)


def info(changes: int, lastsave: int = 1_700_000_000, saves: int | None = 4) -> dict[str, Any]:
    out: dict[str, Any] = {"rdb_changes_since_last_save": changes, "rdb_last_save_time": lastsave}
    if saves is not None:
        out["rdb_saves"] = saves
    return out


@pytest.mark.parametrize(("got", "writes"), [
    (info(0), 0),
    (info(7), 7),
    (info(0, lastsave=1_700_000_050), 1),      # saved again (by someone): at least one write, the counter restarted
    (info(5, saves=5), 5),
    (info(0, saves=None), 0),                  # Redis < 7.0 reports no rdb_saves
])
def test_writes_since_snapshot(got: dict[str, Any], writes: int) -> None:
    assert writes_since_snapshot(got, SNAP) == writes


def test_verdict_names_the_counters_and_fails_on_a_write() -> None:
    text, m = source_verdict(info(0), SNAP, refusing=True)
    assert m is None and text == ("rdb_changes_since_last_save=0, rdb_saves=4, rdb_last_save_time=1700000000, "
                                  "writes refused (min-slaves-to-write)")
    text, m = source_verdict(info(2), SNAP)
    assert m is not None and m.kind == "source-changed" and "writes after it would be lost" in m.detail
    assert source_verdict(info(2), None)[1] is None  # no snapshot: nothing to compare with
