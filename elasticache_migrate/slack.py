"""Slack's wire formats and the three calls the migration makes to Slack.

Pure builders first — the phase message, the Block Kit approval request with Approve / Reject buttons, the
"decided" version of that message, the button value the approval service reads back — then the thin I/O:
an incoming-webhook POST, ``chat.postMessage`` and ``chat.update`` through slack_sdk's own clients.

Secrets stay out of logs: the webhook URL and the bot token are never put in a message or an exception,
and the SDK clients get a silenced logger (their request dumps and retry lines print the webhook URL).

The seam: what slack_sdk raises (its own ``SlackClientError`` family) and what its urllib transport lets through
(``OSError`` for refused, unreachable, timed out and TLS, ``http.client.HTTPException`` for a broken answer,
``ValueError`` for an answer that is not JSON or a URL urllib cannot use) become :class:`SlackError`, by class.
Anything else is a bug and propagates.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "ACTIONS_BLOCK_ID",
    "ButtonValue",
    "MessageRef",
    "SlackError",
    "mrkdwn",
    "mention",
    "run_url",
    "outcome_text",
    "button_value",
    "parse_button_value",
    "approval_message",
    "closed_message",
    "post_webhook",
    "post_message",
    "update_message",
]

APPROVE_ACTION = "approve_cutover"
REJECT_ACTION = "reject_cutover"
ACTIONS_BLOCK_ID = "cutover_decision"
SECTION_LIMIT = 3000  # Slack: section text ≤ 3000 characters
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_MIGRATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")

# The SDK clients log request dumps at DEBUG and "Going to retry … POST <url>" at INFO: the webhook URL is a
# secret, so they get a logger that emits nothing; our callers report every failure without the URL or token.
# (Not from logging.getLogger: logging.config.dictConfig, which Prefect runs, resets registered loggers.)
_sdk_logger = logging.Logger("elasticache_migrate.slack.sdk", level=logging.CRITICAL + 1)
_sdk_logger.propagate = False


class SlackError(Exception):
    """Slack did not accept a call; the message names the API error, never the URL or the token."""


@dataclass(frozen=True)
class MessageRef:
    """Where a posted message lives, for ``chat.update``."""

    channel: str
    ts: str


@dataclass(frozen=True)
class ButtonValue:
    """What an Approve / Reject button carries back: which run, which migration, which pause."""

    run_id: uuid.UUID
    migration_id: str
    pause_key: str


# ---------------------------------------------------------------- pure builders


def mrkdwn(md: str) -> str:
    """Markdown (as the Prefect UI renders it) to Slack mrkdwn: headings and **bold** to *bold*, bullets to •."""
    out = []
    for line in md.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            line = f"*{heading.group(1).strip()}*"
        else:
            line = re.sub(r"\*\*(.+?)\*\*", r"*\1*", line)
            line = re.sub(r"^(\s*)[-*]\s+", r"\1• ", line)
        out.append(line)
    return "\n".join(out).strip()


def mention(approver: str) -> str:
    """``<@U123>`` for a Slack user id (Slack renders the name), the plain name otherwise."""
    return f"<@{approver}>" if _USER_ID.match(approver) else approver


def run_url(ui_url: str | None, run_id: uuid.UUID | str) -> str | None:
    """The run's page in the Prefect UI, or None without a UI base URL."""
    return f"{ui_url.rstrip('/')}/runs/flow-run/{run_id}" if ui_url else None


def outcome_text(decision: str, approver: str, note: str = "") -> str:
    """One line saying who decided what (the same text whoever closes the Slack message)."""
    verb = ":white_check_mark: Approved" if decision == "approve" else ":no_entry: Rejected"
    return f"{verb} by {mention(approver)}{f' ({note})' if note else ''}"


def button_value(run_id: uuid.UUID | str, migration_id: str, pause_key: str) -> str:
    """The compact JSON a button carries (Slack allows 2000 characters)."""
    return json.dumps({"run": str(run_id), "migration": migration_id, "key": pause_key}, separators=(",", ":"))


def parse_button_value(value: object) -> ButtonValue:
    """Read a button value back.

    Raises:
        ValueError: not our JSON, or the run id is not a UUID, or the migration id / pause key is malformed.
    """
    if not isinstance(value, str):
        raise ValueError("button value is missing")
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError("button value is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("button value is not a JSON object")
    try:
        run_id = uuid.UUID(str(data.get("run")))
    except ValueError as exc:
        raise ValueError(f"button value has no valid flow run id: {str(data.get('run'))[:60]!r}") from exc
    migration_id, key = data.get("migration"), data.get("key")
    if not isinstance(migration_id, str) or not _MIGRATION_ID.match(migration_id):
        raise ValueError("button value has no valid migration id")
    if not isinstance(key, str) or not 0 < len(key) <= 200:
        raise ValueError("button value has no pause key")
    return ButtonValue(run_id, migration_id, key)


def approval_message(*, migration_id: str, summary_md: str, run_id: uuid.UUID | str, pause_key: str,
                     ui_url: str | None) -> dict[str, Any]:
    """The Block Kit approval request: the summary, a link to the run, Approve / Reject buttons.

    Returns:
        ``{"text": fallback, "blocks": [...]}`` for chat.postMessage.
    """
    summary = mrkdwn(summary_md)
    if len(summary) > SECTION_LIMIT:
        summary = summary[: SECTION_LIMIT - 1] + "…"
    link = run_url(ui_url, run_id)
    where = f"<{link}|Open the run in Prefect>" if link else f"Flow run `{run_id}`"
    value = button_value(run_id, migration_id, pause_key)
    return {
        "text": f"Approve cutover of {migration_id}? (Approve / Reject buttons, or the Prefect UI)",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{where} · migration `{migration_id}`"}]},
            {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [
                {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": value,
                 "text": {"type": "plain_text", "text": "Approve cutover"},
                 "confirm": {"title": {"type": "plain_text", "text": "Switch the app to the new endpoint?"},
                             "text": {"type": "mrkdwn", "text": f"The app's config is switched for `{migration_id}`."},
                             "confirm": {"type": "plain_text", "text": "Approve"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}},
                {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": value,
                 "text": {"type": "plain_text", "text": "Reject"}},
            ]},
        ],
    }


def closed_message(original: dict[str, Any] | None, outcome: str) -> dict[str, Any]:
    """The approval request once decided: the same facts, no buttons, the outcome at the end."""
    blocks = [b for b in (original or {}).get("blocks") or []
              if isinstance(b, dict) and b.get("type") != "actions"]
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": outcome}})
    return {"text": outcome, "blocks": blocks}


# ---------------------------------------------------------------- I/O


_TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ValueError)  # urllib, under slack_sdk


def post_webhook(url: str, message: dict[str, Any], *, timeout: int = 10) -> None:
    """POST a message to an incoming webhook.

    Raises:
        SlackError: Slack answered with an error status, or could not be reached.
    """
    from slack_sdk.errors import SlackClientError
    from slack_sdk.webhook import WebhookClient

    try:
        resp = WebhookClient(url, timeout=timeout, logger=_sdk_logger).send_dict(message)
    except (SlackClientError, *_TRANSPORT_ERRORS) as exc:  # these can quote the URL, a secret: not chained
        raise SlackError(f"webhook unreachable ({type(exc).__name__})") from None
    if resp.status_code != 200:
        raise SlackError(f"webhook answered HTTP {resp.status_code}: {str(resp.body)[:100]}")


def post_message(api_url: str, token: str, channel: str, message: dict[str, Any], *,
                 timeout: int = 10) -> MessageRef:
    """``chat.postMessage`` with a bot token; returns where the message is, for :func:`update_message`.

    Raises:
        SlackError: Slack answered ``ok: false`` (``not_in_channel``, ``invalid_auth``, …) or was unreachable.
    """
    resp = _call(api_url, token, "chat_postMessage", timeout, channel=channel, **message)
    return MessageRef(str(resp.get("channel") or channel), str(resp.get("ts") or ""))


def update_message(api_url: str, token: str, ref: MessageRef, message: dict[str, Any], *, timeout: int = 10) -> None:
    """``chat.update`` of a message posted by this bot.

    Raises:
        SlackError: as :func:`post_message`.
    """
    _call(api_url, token, "chat_update", timeout, channel=ref.channel, ts=ref.ts, **message)


def _call(api_url: str, token: str, method: str, timeout: int, **kwargs: Any) -> Any:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    client = WebClient(token=token, base_url=api_url.rstrip("/") + "/", timeout=timeout, logger=_sdk_logger)
    try:
        return getattr(client, method)(**kwargs)
    except SlackApiError as exc:
        raise SlackError(f"Slack refused {method}: {exc.response.get('error', exc.response.status_code)}") from exc
    except (SlackClientError, *_TRANSPORT_ERRORS) as exc:  # the token is in a header, never in these
        raise SlackError(f"Slack unreachable for {method} ({type(exc).__name__})") from exc
