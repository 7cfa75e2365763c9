"""flows/stage.py: which tasks the data path calls for each path, and the sync → staged fallback under ``auto``
(the tasks replaced by recorders: no server, no Prefect run)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import flows.stage as stage
from elasticache_migrate.errors import SourceError, SyncUnavailable
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.staging.resume import Reuse
from elasticache_migrate.state import Extracted, QuiesceState, ServerInfo, Snapshot, StagedObject

SNAP = Snapshot(last_save_time=1_700_000_000, rdb_saves=3, seconds=0.5, changes_since_save=0)
RDB = Extracted(path="/w/dump.rdb", size=10, sha256="a" * 64, crc64_stored=1, crc64_computed=1, rdb_version=10,
                magic="REDIS", origin="host:/data/dump.rdb")
OBJ = StagedObject("stage", "k", 10, "a" * 64, "e", 10, "REDIS", uploaded=True)


LOG = logging.getLogger("test-stage-snapshot")


def _plan(transfer: str) -> MigrationPlan:
    return validate_plan({"migration_id": "m-1", "source": {"kind": "host"}, "target": {"replication_group_id": "g"},
                          "staging": {"bucket": "stage", "transfer": transfer}})


def _quiesced(version: tuple[int, int, int]) -> QuiesceState:
    return QuiesceState(mode="client-pause-write", paused_at=1.0, pause_expires_at=None,
                        server=ServerInfo("redis", version))


class Recorder:
    """Stands in for the tasks; ``calls`` lists them in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, earlier: Reuse | None = None,
                 sync: BaseException | None = None) -> None:
        self.calls: list[str] = []

        def rec(name: str, result: Any, exc: BaseException | None = None) -> Any:
            def task(*_args: Any) -> Any:
                self.calls.append(name)
                if exc is not None:
                    raise exc
                return result
            return task

        monkeypatch.setattr(stage, "reusable_snapshot", rec("reuse-snapshot", earlier))
        monkeypatch.setattr(stage, "sync_and_upload", rec("sync-upload", (SNAP, RDB, OBJ), sync))
        monkeypatch.setattr(stage, "bgsave_wait", rec("bgsave-wait", SNAP))
        monkeypatch.setattr(stage, "extract_and_upload", rec("extract-upload", (RDB, OBJ)))
        monkeypatch.setattr(stage, "extract", rec("extract", RDB))
        monkeypatch.setattr(stage, "upload", rec("upload", OBJ))


@pytest.mark.parametrize("transfer, version, path, calls", [
    ("auto", (7, 0, 15), "sync", ["reuse-snapshot", "sync-upload"]),
    ("auto", (6, 2, 14), "staged", ["reuse-snapshot", "bgsave-wait", "extract", "upload"]),
    ("sync", (7, 0, 15), "sync", ["reuse-snapshot", "sync-upload"]),
    ("stream", (7, 0, 15), "stream", ["reuse-snapshot", "bgsave-wait", "extract-upload"]),
    ("staged", (7, 0, 15), "staged", ["reuse-snapshot", "bgsave-wait", "extract", "upload"]),
])
def test_each_path_calls_its_steps(monkeypatch: pytest.MonkeyPatch, transfer: str, version: tuple[int, int, int],
                                   path: str, calls: list[str]) -> None:
    rec = Recorder(monkeypatch)
    got = stage.stage_snapshot(_plan(transfer), _quiesced(version), LOG)
    assert rec.calls == calls and got.path == path
    assert (got.snapshot, got.rdb, got.staged) == (SNAP, RDB, OBJ)


def test_a_resumed_run_reuses_the_object_or_uploads_the_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch, earlier=Reuse(SNAP, RDB, OBJ))
    assert stage.stage_snapshot(_plan("auto"), _quiesced((7, 0, 15)), LOG).path == "reused"
    assert rec.calls == ["reuse-snapshot"]
    rec = Recorder(monkeypatch, earlier=Reuse(SNAP, RDB, None))
    assert stage.stage_snapshot(_plan("sync"), _quiesced((7, 0, 15)), LOG).path == "reuploaded"
    assert rec.calls == ["reuse-snapshot", "upload"]


def test_auto_takes_the_staged_path_when_the_source_refuses_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch, sync=SyncUnavailable("the source's ACL user 'm' may not run SYNC"))
    got = stage.stage_snapshot(_plan("auto"), _quiesced((7, 0, 15)), LOG)
    assert got.path == "staged" and rec.calls == ["reuse-snapshot", "sync-upload", "bgsave-wait", "extract", "upload"]


def test_sync_as_asked_keeps_the_refusal_and_other_errors_are_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch, sync=SyncUnavailable("no SYNC for you"))
    with pytest.raises(SyncUnavailable):
        stage.stage_snapshot(_plan("sync"), _quiesced((7, 0, 15)), LOG)
    rec = Recorder(monkeypatch, sync=SourceError("link cut", retryable=True))
    with pytest.raises(SourceError, match="link cut"):
        stage.stage_snapshot(_plan("auto"), _quiesced((7, 0, 15)), LOG)
    assert rec.calls == ["reuse-snapshot", "sync-upload"]
