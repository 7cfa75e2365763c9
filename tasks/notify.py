"""Notifications: one message per phase to a Slack incoming webhook, or to the log only.

A notification never breaks a migration: a webhook that fails is logged and the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from tasks.plan import MigrationPlan, validate_plan
from tasks.secrets import resolve_secret

__all__ = ["EVENTS", "slack_payload", "notify", "notify_flow_failure"]

EVENTS = {
    "started": ":arrow_forward:",
    "approval-requested": ":raised_hand:",
    "cutover": ":twisted_rightwards_arrows:",
    "succeeded": ":white_check_mark:",
    "rolled-back": ":leftwards_arrow_with_hook:",
    "rejected": ":no_entry:",
    "failed": ":x:",
}


def _logger() -> Any:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run (hooks, scripts)
        return logging.getLogger("redis-migrate")


def slack_payload(plan: MigrationPlan, event: str, text: str) -> dict[str, Any]:
    """The Slack message for one phase (text fallback + one section block)."""
    icon = EVENTS.get(event, ":information_source:")
    title = f"{icon} *{plan.migration_id}* — {event}"
    return {
        "text": f"{plan.migration_id}: {event}: {text}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{title}\n{text}"}}],
    }


def notify(plan: MigrationPlan, event: str, text: str) -> bool:
    """Send one phase message; True if Slack accepted it (False: logged only or Slack failed)."""
    log = _logger()
    log.info("[notify %s] %s", event, text)
    try:
        url = resolve_secret(plan.notifications.slack_webhook_secret, purpose="Slack webhook URL")
    except Exception as exc:  # noqa: BLE001 - a missing secret must not stop the migration
        log.warning("Slack notification not sent: %s", exc)
        return False
    if not url:
        return False
    try:
        r = httpx.post(url, json=slack_payload(plan, event, text), timeout=10)
        r.raise_for_status()
        return True
    except httpx.HTTPError as exc:
        log.warning("Slack notification not sent: %s", type(exc).__name__)  # the URL is a secret: not logged
        return False


def notify_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure/on_crashed hook: tell the channel the run failed and why."""
    try:
        plan = validate_plan(dict(flow_run.parameters["plan"]))
    except Exception:  # noqa: BLE001 - nothing to notify with
        return
    notify(plan, "failed", f"run {flow_run.name} ended {state.type.value}: {state.message or ''}")
