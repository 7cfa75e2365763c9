"""The notifier against a local Slack stand-in (tests/support/slack.py): webhook and bot-token paths, log-only
without a secret, and a failing Slack that never breaks anything — the real flow included.

The stand-in answers like Slack's Web API and incoming webhooks and enforces the Block Kit limits; it cannot show
real Slack's rendering, delivery to people, rate limits (429) or channel membership rules beyond what it mimics.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from elasticache_migrate.notify import notify
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.testing.ports import free_port
from tests.support.slack import SlackStandIn


def _plan(**notifications: Any) -> MigrationPlan:
    return validate_plan({"migration_id": "notify-test", "source": {"kind": "host"}, "staging": {"bucket": "bkt"},
                          "target": {"replication_group_id": "app-cache"}, "notifications": notifications})


def test_webhook_path_posts_the_phase_message(slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    url = slack.webhook_url
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", url)
    assert notify(_plan(slack_webhook_secret="env:TEST_SLACK_WEBHOOK"), "started", "docker source → elasticache")
    (sent,) = slack.calls("/services/")
    assert sent.path == url.removeprefix(slack.base)
    assert sent.body["text"] == "notify-test: started: docker source → elasticache"
    assert sent.blocks[0]["text"]["text"].startswith(":arrow_forward: *notify-test* — started")


def test_bot_token_path_posts_to_the_channel(slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SLACK_BOT", slack.token)
    plan = _plan(slack_bot_token_secret="env:TEST_SLACK_BOT", slack_channel="C0MIGRATE", slack_api_url=slack.api_url)
    for event in ["started", "approval-requested", "cutover", "succeeded", "rolled-back", "rejected", "failed"]:
        assert notify(plan, event, f"{event} text")
    sent = slack.calls("/api/chat.postMessage")
    assert [r.body["text"] for r in sent][-1] == "notify-test: failed: failed text"
    assert len(sent) == 7 and {r.body["channel"] for r in sent} == {"C0MIGRATE"}
    assert sent[0].headers["Authorization"] == f"Bearer {slack.token}"


def test_no_secret_logs_only_and_posts_nothing(slack: SlackStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    plan = _plan(slack_channel="C0MIGRATE", slack_api_url=slack.api_url)  # a channel but no token: log only
    assert notify(plan, "started", "hello") is False
    assert slack.requests == []
    assert "[notify started] hello" in caplog.text


@pytest.mark.parametrize("mode", ["http500", "not_ok", "unreachable", "bad_token", "missing_env"])
def test_failing_slack_never_raises_nor_logs_the_secret(slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture, mode: str) -> None:
    caplog.set_level(logging.DEBUG)  # even the SDKs' DEBUG request dumps must not carry the URL or the token
    url = slack.webhook_url if mode != "unreachable" else f"http://127.0.0.1:{free_port()}/services/T/B/SECRETPART"
    token = slack.token if mode != "bad_token" else "xoxb-wrong-token-9999"
    if mode in {"http500", "not_ok"}:
        slack.mode = mode
    if mode != "missing_env":
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", url)
        monkeypatch.setenv("TEST_SLACK_BOT", token)
    webhook = _plan(slack_webhook_secret="env:TEST_SLACK_WEBHOOK")
    bot = _plan(slack_bot_token_secret="env:TEST_SLACK_BOT", slack_channel="C0MIGRATE",
                slack_api_url=slack.api_url if mode != "unreachable" else f"http://127.0.0.1:{free_port()}/api")
    if mode != "bad_token":  # (a wrong bot token says nothing about the webhook)
        assert notify(webhook, "failed", "x") is False
    assert notify(bot, "failed", "x") is False
    assert "not sent" in caplog.text
    for secret in (url, url.rsplit("/", 1)[1], token):
        assert secret not in caplog.text


