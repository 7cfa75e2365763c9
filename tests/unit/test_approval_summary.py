"""The approval summary (Prefect form and Slack message) shows both deadlines and what approving does. No server."""

from __future__ import annotations

from elasticache_migrate.plan import validate_plan
from elasticache_migrate.state import Extracted, QuiesceState, ServerInfo, StagedObject
from elasticache_migrate.verify.report import VerifyReport
from flows.migrate import approval_summary


def test_the_summary_shows_the_approval_deadline_the_pause_and_the_fence() -> None:
    plan = validate_plan({"migration_id": "orders-2024", "source": {"kind": "host"}, "staging": {"bucket": "bkt"},
                          "target": {"replication_group_id": "app-cache"},
                          "cutover": {"backend": "dotenv", "dotenv_path": "/srv/app/.env"},
                          "approval": {"timeout_seconds": 5400}})
    rdb = Extracted(path="/w/dump.rdb", size=1024, sha256="ab", crc64_stored=1, crc64_computed=1, rdb_version=10,
                    magic="REDIS", origin="host:/var/lib/redis/dump.rdb")
    staged = StagedObject(bucket="bkt", key="k/dump.rdb", size=1024, sha256="ab", etag="e", rdb_version=10,
                          magic="REDIS", uploaded=True)
    quiesced = QuiesceState(mode="client-pause-write", paused_at=1_764_686_100.0, pause_expires_at=1_764_687_000.0,
                            server=ServerInfo("redis", (7, 0, 15)))
    text = approval_summary(plan, rdb, staged, "redis://t:6379", VerifyReport(dbs={0: (3, 3)}, keys_checked=3),
                            quiesced, now=1_764_686_400.0)
    assert "- **Approval deadline**: 2025-12-02 16:10:00 UTC (in 5400s); no decision by then = rollback" in text
    assert "- **Writes**: blocked (CLIENT PAUSE WRITE) since 2025-12-02 14:35:00 UTC, renewed while the run lives" \
        in text
    assert "the old source is fenced (refuses every write), re-checked for writes since the snapshot" in text
    assert "Sentinel set" not in text


def test_the_summary_of_a_sentinel_set_says_it_is_held_and_decommissioned() -> None:
    plan = validate_plan({"migration_id": "orders-2024", "source": {"kind": "host", "redis": {
        "host": "10.0.0.11", "port": 26379, "sentinel_master": "mymaster"}}, "staging": {"bucket": "bkt"},
        "target": {"replication_group_id": "app-cache"}})
    rdb = Extracted(path="/w/dump.rdb", size=1, sha256="ab", crc64_stored=0, crc64_computed=0, rdb_version=7,
                    magic="REDIS", origin="host:/var/lib/redis/dump.rdb")
    staged = StagedObject(bucket="bkt", key="k", size=1, sha256="ab", etag="e", rdb_version=7, magic="REDIS",
                          uploaded=True)
    text = approval_summary(plan, rdb, staged, "redis://t:6379", VerifyReport(dbs={0: (1, 1)}, keys_checked=1))
    assert ("- **Sentinel set** `mymaster`: held still (no replica can be promoted; a failover anyway rolls back); "
            "after the verified switch its Sentinels stop monitoring it") in text
