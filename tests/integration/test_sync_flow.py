"""The real flow with the sync transfer: SYNC straight into S3, a verified cutover, no bgsave-wait/extract/upload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from flows.migrate import migrate_redis
from tests.conftest import make_plan
from tests.support.outcomes import journaled_copy, migrated
from tests.support.prefect_server import settled_task_runs
from tests.support.servers import sample_keys as _sample

MiB = 1 << 20


LOG = logging.getLogger("test-replsync")


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_with_the_sync_transfer_ends_in_a_verified_cutover(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                    source: LocalRedisServer, app_env: Path) -> None:
    keys = _sample(source)
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "sync"},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    try:
        state = migrate_redis(plan, return_state=True)
        assert state.is_completed(), state.message
        result = migrated(state.result())
        assert result.keys_verified == keys
        assert f"REDIS_URL={result.endpoint.url()}/0" in app_env.read_text()
        extracted = journaled_copy(plan)
        assert extracted.origin.startswith("SYNC from") and extracted.sha256 == result.rdb.sha256
        runs = settled_task_runs(state.state_details.flow_run_id)
        names = {t.name.rsplit("-", 1)[0] for t in runs}
        assert "sync-upload" in names and not names & {"bgsave-wait", "extract", "upload", "extract-upload"}
    finally:
        stop_rehearsal_target(plan.workdir)
