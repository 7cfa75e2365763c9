"""Notifications: one message per phase to Slack (incoming webhook or bot token), or to the log only.

- ``notifications.slack_webhook_secret`` set → the webhook gets every phase message;
- else ``notifications.slack_bot_token_secret`` + ``notifications.slack_channel`` → ``chat.postMessage``;
- else the log only.

The approval request with Approve / Reject buttons (needs the bot token and ``approval.slack_channel``) is
posted and closed from here too. Nothing here ever raises into the flow: a Slack that fails (:class:`SlackError`)
or a secret that cannot be resolved (:class:`~elasticache_migrate.errors.MigrationError`) is logged, without the
URL or the token, and the migration goes on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from elasticache_migrate import slack
from elasticache_migrate.errors import MigrationError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.slack import SlackError

__all__ = ["EVENTS", "PostedApproval", "slack_payload", "notify", "post_approval_request", "close_approval_request"]

EVENTS = {
    "started": ":arrow_forward:",
    "approval-requested": ":raised_hand:",
    "cutover": ":twisted_rightwards_arrows:",
    "succeeded": ":white_check_mark:",
    "rolled-back": ":leftwards_arrow_with_hook:",
    "rejected": ":no_entry:",
    "cancelled": ":stop_sign:",
    "failed": ":x:",
}

# What posting can meet: Slack refusing or unreachable, or the secret's reference not resolving (PlanError).
# Neither message holds the webhook URL or the token.
_NOT_SENT = (SlackError, MigrationError)


@dataclass(frozen=True)
class PostedApproval:
    """An approval request as posted, so it can be closed with the outcome."""

    ref: slack.MessageRef
    message: dict[str, Any]


def slack_payload(plan: MigrationPlan, event: str, text: str) -> dict[str, Any]:
    """The Slack message for one phase (text fallback + one section block)."""
    icon = EVENTS.get(event, ":information_source:")
    title = f"{icon} *{plan.migration_id}* — {event}"
    return {
        "text": f"{plan.migration_id}: {event}: {text}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{title}\n{text}"}}],
    }


def notify(plan: MigrationPlan, event: str, text: str, log: Log = logger) -> bool:
    """Send one phase message; True if Slack accepted it (False: logged only, or Slack failed)."""
    log.info("[notify %s] %s", event, text)
    n = plan.notifications
    try:
        url = resolve_secret(n.slack_webhook_secret, purpose="Slack webhook URL")
        if url:
            slack.post_webhook(url, slack_payload(plan, event, text))
            return True
        if n.slack_bot_token_secret and n.slack_channel:
            token = resolve_secret(n.slack_bot_token_secret, purpose="Slack bot token")
            if token:
                slack.post_message(n.slack_api_url, token, n.slack_channel, slack_payload(plan, event, text))
                return True
    except _NOT_SENT as exc:  # a notification never stops a migration
        log.warning("Slack notification %r not sent: %s", event, exc)
    return False


def post_approval_request(plan: MigrationPlan, summary_md: str, run_id: uuid.UUID | None, pause_key: str,
                          log: Log = logger) -> PostedApproval | None:
    """Post the Block Kit approval request (Approve / Reject buttons) to ``approval.slack_channel``.

    Needs ``notifications.slack_bot_token_secret`` and ``approval.slack_channel``; without them, or if Slack
    fails, returns None and the run waits for a decision in the Prefect UI as before.
    """
    channel, token_ref = plan.approval.slack_channel, plan.notifications.slack_bot_token_secret
    if not channel or not token_ref or run_id is None:
        return None
    message = slack.approval_message(migration_id=plan.migration_id, summary_md=summary_md, run_id=run_id,
                                     pause_key=pause_key, ui_url=plan.approval.ui_url)
    try:
        token = resolve_secret(token_ref, purpose="Slack bot token")
        if not token:
            return None
        ref = slack.post_message(plan.notifications.slack_api_url, token, channel, message)
    except _NOT_SENT as exc:  # the Prefect UI still takes the decision
        log.warning("Slack approval request not posted (decide in the Prefect UI): %s", exc)
        return None
    log.info("approval request posted to Slack channel %s", channel)
    return PostedApproval(ref, message)


def close_approval_request(plan: MigrationPlan, posted: PostedApproval | None, outcome: str,
                           log: Log = logger) -> None:
    """Replace the buttons of a posted approval request with the outcome (whoever decided, wherever)."""
    if posted is None or not plan.notifications.slack_bot_token_secret:
        return
    try:
        token = resolve_secret(plan.notifications.slack_bot_token_secret, purpose="Slack bot token")
        if token:
            slack.update_message(plan.notifications.slack_api_url, token, posted.ref,
                                 slack.closed_message(posted.message, outcome))
    except _NOT_SENT as exc:  # stale buttons only earn a 409 from the approval service
        log.warning("Slack approval request not updated: %s", exc)
