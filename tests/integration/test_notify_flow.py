"""The real flow with every Slack call failing (HTTP 500): the migration completes all the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from flows.migrate import migrate_redis
from tests.conftest import make_plan
from tests.support.outcomes import migrated
from tests.support.slack import SlackStandIn


def test_failing_slack_does_not_stop_the_flow(tmp_path: Path, moto_endpoint: str, bucket: str,
                                              source: LocalRedisServer, slack: SlackStandIn,
                                              monkeypatch: pytest.MonkeyPatch, prefect_server: None) -> None:
    """The real flow, every Slack call failing (HTTP 500): the migration completes all the same."""
    slack.mode = "http500"
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.webhook_url)
    r = source.client()
    r.set("k", "v")
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     notifications={"slack_webhook_secret": "env:TEST_SLACK_WEBHOOK"})
    try:
        state = migrate_redis(plan, return_state=True)
        assert state.is_completed(), state.message
        assert migrated(state.result()).keys_verified == 1
        assert len(slack.calls("/services/")) >= 3  # started, approval-requested, cutover, succeeded: all refused
    finally:
        stop_rehearsal_target(plan.workdir)
