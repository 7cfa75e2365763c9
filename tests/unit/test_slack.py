"""Slack, without Slack: the Block Kit approval request, the closed message, button values, interaction
payload parsing and the service's settings. (Its HTTP answers are in tests/integration/test_slack_approval.py.)
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from approval_service.app import Settings
from approval_service.interaction import BadInteraction, parse_interaction
from elasticache_migrate.slack import (
    APPROVE_ACTION,
    REJECT_ACTION,
    SlackError,
    approval_message,
    button_value,
    closed_message,
    mention,
    mrkdwn,
    outcome_text,
    parse_button_value,
    post_message,
    post_webhook,
    run_url,
)

RUN = uuid.UUID("6f1c2a4e-0b7d-4c1e-9a55-3c2b1d0e9f10")
SUMMARY = "\n".join([
    "### Approve cutover of `orders-cache`?",
    "",
    "- **Snapshot**: 1,234,567 bytes, REDIS RDB v10, from host:/var/lib/redis/dump.rdb",
    "- **Target**: elasticache `app-cache` (redis 7.1) at `app-cache.abc.use1.cache.amazonaws.com:6379`",
    "- **Keys**: db0: 1200 keys, db1: 30 keys",
    "- **Verify**: 1230 keys equal by type, value and TTL (0 mismatches)",
])


def _message(ui_url: str | None = "http://prefect.internal:4200/") -> dict[str, Any]:
    return approval_message(migration_id="orders-cache", summary_md=SUMMARY, run_id=RUN, pause_key="approval-1",
                            ui_url=ui_url)


def test_approval_message_has_summary_link_and_both_buttons_carrying_the_run() -> None:
    msg = _message()
    section, context, actions = msg["blocks"]
    text = section["text"]["text"]
    assert text.startswith("*Approve cutover of `orders-cache`?*")
    assert "• *Snapshot*: 1,234,567 bytes, REDIS RDB v10" in text and "**" not in text
    assert "db0: 1200 keys" in text and "0 mismatches" in text and "app-cache.abc.use1" in text
    assert f"<http://prefect.internal:4200/runs/flow-run/{RUN}|Open the run in Prefect>" in \
        context["elements"][0]["text"]
    buttons = {b["action_id"]: b for b in actions["elements"]}
    assert set(buttons) == {APPROVE_ACTION, REJECT_ACTION}
    assert buttons[APPROVE_ACTION]["style"] == "primary" and buttons[REJECT_ACTION]["style"] == "danger"
    assert "confirm" in buttons[APPROVE_ACTION]  # a dialog before switching the app
    for b in buttons.values():
        assert json.loads(b["value"]) == {"run": str(RUN), "migration": "orders-cache", "key": "approval-1"}
    assert "orders-cache" in msg["text"]  # fallback for notifications


def test_approval_message_without_ui_url_names_the_run_and_long_summaries_fit_slack() -> None:
    msg = approval_message(migration_id="orders-cache", summary_md="x" * 5000, run_id=RUN, pause_key="k",
                           ui_url=None)
    assert len(msg["blocks"][0]["text"]["text"]) == 3000
    assert f"Flow run `{RUN}`" in msg["blocks"][1]["elements"][0]["text"]


def test_closed_message_keeps_the_facts_and_drops_the_buttons() -> None:
    closed = closed_message(_message(), outcome_text("approve", "U0ALICE1", "from Slack"))
    assert [b["type"] for b in closed["blocks"]] == ["section", "context", "section"]
    assert closed["blocks"][-1]["text"]["text"] == ":white_check_mark: Approved by <@U0ALICE1> (from Slack)"
    assert closed_message(None, "x")["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]


def test_small_helpers() -> None:
    assert mention("U0ALICE1") == "<@U0ALICE1>" and mention("alice") == "alice"
    assert outcome_text("reject", "bob", "window moved") == ":no_entry: Rejected by bob (window moved)"
    assert run_url(None, RUN) is None and run_url("http://x/", RUN) == f"http://x/runs/flow-run/{RUN}"
    assert mrkdwn("## Title\n- **a**: b\n  * c") == "*Title*\n• *a*: b\n  • c"


def test_button_value_round_trip_and_refusals() -> None:
    v = parse_button_value(button_value(RUN, "orders-cache", "approval-7"))
    assert (v.run_id, v.migration_id, v.pause_key) == (RUN, "orders-cache", "approval-7")
    for bad in [None, "not json", "[1]", json.dumps({"run": "nope", "migration": "orders-cache", "key": "k"}),
                json.dumps({"run": str(RUN), "migration": "BAD ID", "key": "k"}),
                json.dumps({"run": str(RUN), "migration": "orders-cache"})]:
        with pytest.raises(ValueError):
            parse_button_value(bad)


def _payload(**over: Any) -> dict[str, Any]:
    value = button_value(RUN, "orders-cache", "approval-1")
    p = {"type": "block_actions", "user": {"id": "U0ALICE1", "username": "alice"},
         "response_url": "https://hooks.slack.com/actions/T/1/x", "message": _message(),
         "actions": [{"type": "button", "action_id": APPROVE_ACTION, "value": value}]}
    p.update(over)
    return p


def _form(payload: Any) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


def test_parse_interaction_reads_the_click() -> None:
    click = parse_interaction(_form(_payload()))
    assert (click.decision, click.run_id, click.migration_id, click.pause_key) == ("approve", RUN, "orders-cache",
                                                                                   "approval-1")
    assert (click.user_id, click.user_name) == ("U0ALICE1", "alice")
    assert click.response_url == "https://hooks.slack.com/actions/T/1/x" and click.message is not None
    reject = _payload(actions=[{"action_id": REJECT_ACTION, "value": button_value(RUN, "orders-cache", "k")}])
    assert parse_interaction(_form(reject)).decision == "reject"


@pytest.mark.parametrize("body,why", [
    (b"", "no payload"),
    (urlencode({"other": "1"}).encode(), "no payload"),
    (_form("{not json"), "not JSON"),
    (_form("[]"), "not a JSON object"),
    (_form(_payload(type="view_submission")), "unsupported interaction type"),
    (_form(_payload(actions=[])), "no action"),
    (_form(_payload(actions=[{"action_id": "delete_everything", "value": "{}"}])), "unknown action_id"),
    (_form(_payload(actions=[{"action_id": APPROVE_ACTION,
                              "value": json.dumps({"run": "123", "migration": "orders-cache", "key": "k"})}])),
     "no valid flow run id"),
    (_form(_payload(user={"id": "alice"})), "no Slack user id"),
    (b"\xff\xfe", "not a form"),
])
def test_parse_interaction_refuses_malformed(body: bytes, why: str) -> None:
    with pytest.raises(BadInteraction, match=why):
        parse_interaction(body)


def test_settings_from_env() -> None:
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        Settings.from_env({})
    s = Settings.from_env({"SLACK_SIGNING_SECRET": "abc", "SLACK_APPROVERS": "U1AA, U2BB,,"})
    assert s.approvers == frozenset({"U1AA", "U2BB"}) and s.response_url_prefix == "https://hooks.slack.com/"


# ---- the seam: what slack_sdk and its urllib transport raise becomes SlackError, without the secret -------------

def _closed_port() -> int:
    from elasticache_migrate.testing.ports import free_port

    return free_port()  # nothing listens there


def test_webhook_failures_become_slack_error_without_the_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/services/T0/B0/SECRETPART"
    with pytest.raises(SlackError, match=r"webhook unreachable \(URLError\)") as err:
        post_webhook(url, {"text": "x"}, timeout=2)
    assert "SECRETPART" not in str(err.value) and err.value.__cause__ is None  # urllib's error would quote it
    with pytest.raises(SlackError, match=r"webhook unreachable \(SlackRequestError\)") as err:
        post_webhook("ftp://hooks.example/services/T0/B0/SECRETPART", {"text": "x"})
    assert "SECRETPART" not in str(err.value)


def test_web_api_failures_become_slack_error() -> None:
    api = f"http://127.0.0.1:{_closed_port()}/api"
    with pytest.raises(SlackError, match=r"Slack unreachable for chat_postMessage \(URLError\)"):
        post_message(api, "xoxb-not-a-real-token", "C0MIGRATE", {"text": "x"}, timeout=2)
