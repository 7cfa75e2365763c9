"""Reading a Slack interaction request: the form body, its ``payload`` JSON, the button that was clicked.

Pure: bytes in, a :class:`Click` out, or :class:`BadInteraction` saying what is wrong (the service answers 400).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from elasticache_migrate.slack import APPROVE_ACTION, REJECT_ACTION, parse_button_value

__all__ = ["BadInteraction", "Click", "parse_interaction"]

DECISIONS: dict[str, Literal["approve", "reject"]] = {APPROVE_ACTION: "approve", REJECT_ACTION: "reject"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class BadInteraction(ValueError):
    """The request is not a click on one of our buttons (→ HTTP 400)."""


@dataclass(frozen=True)
class Click:
    """One click on Approve or Reject, as Slack reported it."""

    decision: Literal["approve", "reject"]
    run_id: uuid.UUID
    migration_id: str
    pause_key: str
    user_id: str
    user_name: str
    response_url: str | None
    message: dict[str, Any] | None = field(default=None, repr=False)  # the message holding the buttons


def parse_interaction(body: bytes) -> Click:
    """Parse an ``application/x-www-form-urlencoded`` body with a ``payload`` field of type block_actions.

    Raises:
        BadInteraction: no payload, not JSON, not block_actions, no action, unknown action_id, bad button
            value (run id, migration id, pause key), or no user.
    """
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInteraction(f"body is not a form: {exc}") from exc
    raw = form.get("payload")
    if not raw or not raw[0].strip():
        raise BadInteraction("no payload field in the form")
    try:
        payload = json.loads(raw[0])
    except json.JSONDecodeError as exc:
        raise BadInteraction(f"payload is not JSON: {exc.msg}") from exc
    if not isinstance(payload, dict):
        raise BadInteraction("payload is not a JSON object")
    if payload.get("type") != "block_actions":
        raise BadInteraction(f"unsupported interaction type {str(payload.get('type'))[:40]!r}")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadInteraction("no action in the payload")
    action = actions[0]
    decision = DECISIONS.get(str(action.get("action_id")))
    if decision is None:
        raise BadInteraction(f"unknown action_id {str(action.get('action_id'))[:60]!r}")
    try:
        value = parse_button_value(action.get("value"))
    except ValueError as exc:
        raise BadInteraction(str(exc)) from exc
    user: dict[str, Any] = payload["user"] if isinstance(payload.get("user"), dict) else {}
    user_id = str(user.get("id") or "")
    if not _USER_ID.match(user_id):
        raise BadInteraction("no Slack user id in the payload")
    response_url = payload.get("response_url")
    message = payload.get("message")
    return Click(decision=decision, run_id=value.run_id, migration_id=value.migration_id, pause_key=value.pause_key,
                 user_id=user_id, user_name=str(user.get("username") or user.get("name") or ""),
                 response_url=response_url if isinstance(response_url, str) else None,
                 message=message if isinstance(message, dict) else None)
