"""The whole flow against real local components: redis-server, moto's S3, a Prefect server."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.sample_data import load_sample
from flows.migrate import migrate_redis
from tasks.approval import resume_run, wait_for_paused_run
from tests.conftest import make_plan
from tests.support.outcomes import migrated

pytestmark = pytest.mark.usefixtures("prefect_server")


def decide_in_background(decision: str, approver: str = "alice", note: str = "") -> threading.Thread:
    """Answer the flow's approval pause from another thread, as the UI or Slack would."""
    def run() -> None:
        run_id = wait_for_paused_run(timeout=120)
        resume_run(run_id, decision, approver, note)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_host_source_rehearsal_with_approval_switches_config(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                             source: Any, app_env: Path, s3: Any) -> None:
    r, r1 = source.client(), source.client(db=1)
    stats = load_sample(r, db1=r1)
    r.close(), r1.close()  # the "app" disconnects: quiesce waits for application clients to leave
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 120})
    decider = decide_in_background("approve")
    try:
        result = migrated(migrate_redis(plan))
        decider.join(5)
        port = result.endpoint.port
        # every key equal (verify compared them); here the user-visible outcomes:
        assert result.keys_verified == sum(stats.keys.values())
        assert result.dbs[0][0] == result.dbs[0][1] == stats.keys[0]
        text = app_env.read_text()
        assert f"REDIS_URL=redis://127.0.0.1:{port}/0" in text
        assert "APP_ENV=production" in text and "WORKERS=4" in text  # the rest of the file untouched
        acl = s3.get_object_acl(Bucket=bucket, Key=plan.object_key)
        assert any(g["Permission"] == "READ" and g["Grantee"].get("ID", "").startswith("540804c3")
                   for g in acl["Grants"])
        assert s3.head_object(Bucket=bucket, Key=plan.object_key)["ServerSideEncryption"] == "AES256"
        assert result.approved_by == "alice"
    finally:
        stop_rehearsal_target(plan.workdir)
