"""Phase messages (elasticache_migrate.notify) without Slack: the payload, the log-only path, and a secret that
cannot be resolved, which is logged and never raised. (Slack's answers: tests/functional/test_notify_slack.py.)"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from elasticache_migrate.notify import EVENTS, close_approval_request, notify, post_approval_request, slack_payload
from elasticache_migrate.plan import MigrationPlan, validate_plan


def _plan(approval: dict[str, Any] | None = None, **notifications: Any) -> MigrationPlan:
    return validate_plan({"migration_id": "notify-test", "source": {"kind": "host"}, "staging": {"bucket": "bkt"},
                          "target": {"replication_group_id": "app-cache"}, "notifications": notifications,
                          "approval": approval or {}})


def test_payload_per_event() -> None:
    p = _plan()
    msg = slack_payload(p, "cutover", "file:/app/.env now points at redis://new:6379")
    assert msg["text"] == "notify-test: cutover: file:/app/.env now points at redis://new:6379"
    assert msg["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": (
        ":twisted_rightwards_arrows: *notify-test* — cutover\nfile:/app/.env now points at redis://new:6379")}}]
    assert slack_payload(p, "other", "x")["blocks"][0]["text"]["text"].startswith(":information_source:")
    assert set(EVENTS) == {"started", "approval-requested", "cutover", "succeeded", "rolled-back", "rejected",
                           "cancelled", "failed"}


def test_log_only_without_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test-notify")
    with caplog.at_level(logging.INFO, logger="test-notify"):
        assert notify(_plan(slack_channel="C0MIGRATE"), "started", "hello", log) is False
    assert [r.getMessage() for r in caplog.records] == ["[notify started] hello"]


def test_a_secret_that_is_not_there_is_logged_not_raised(caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_WEBHOOK_VAR", raising=False)
    with caplog.at_level(logging.INFO, logger="elasticache_migrate"):
        assert notify(_plan(slack_webhook_secret="env:NO_SUCH_WEBHOOK_VAR"), "failed", "x") is False
    assert "Slack notification 'failed' not sent" in caplog.text and "NO_SUCH_WEBHOOK_VAR" in caplog.text


def test_approval_request_needs_a_channel_a_token_and_a_run(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    run = uuid.uuid4()
    assert post_approval_request(_plan(), "summary", run, "k") is None  # no channel, no token
    with_slack = _plan({"slack_channel": "C0APPROVALS"}, slack_bot_token_secret="env:NO_SUCH_TOKEN_VAR")
    assert post_approval_request(with_slack, "summary", None, "k") is None  # not in a flow run
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    with caplog.at_level(logging.INFO, logger="elasticache_migrate"):
        assert post_approval_request(with_slack, "summary", run, "k") is None
    assert "Slack approval request not posted (decide in the Prefect UI)" in caplog.text
    close_approval_request(with_slack, None, "outcome")  # nothing was posted: nothing to close
