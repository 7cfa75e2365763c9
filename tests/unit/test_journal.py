"""The journal's round trip: what a step writes is what the re-run reads, None values inside a section included."""

from __future__ import annotations

from pathlib import Path

from elasticache_migrate.journal import Journal
from elasticache_migrate.state import QuiesceState, ServerInfo, Snapshot


def test_none_inside_a_section_survives_the_round_trip(tmp_path: Path) -> None:
    # refuse-writes has no pause expiry, a Redis < 7 snapshot no rdb_saves: both are None and must read back
    quiesced = QuiesceState(mode="refuse-writes", paused_at=1.0, pause_expires_at=None,
                            server=ServerInfo("redis", (3, 2, 6)), saved_config={"min-slaves-to-write": "0"})
    snap = Snapshot(last_save_time=1000, rdb_saves=None, seconds=0.5, changes_since_save=0)
    Journal(tmp_path).update(quiesce=quiesced, snapshot=snap)
    got = Journal(tmp_path).read()
    assert (got.quiesce, got.snapshot, got.staged) == (quiesced, snap, None)
    Journal(tmp_path).update(quiesce=None)
    assert Journal(tmp_path).read().quiesce is None and "quiesce" not in (tmp_path / "journal.json").read_text()
