"""Approving from Slack, end to end on 127.0.0.1: a paused run posts its Block Kit request to a Slack stand-in,
signed clicks go to the approval service under uvicorn, the service resumes the run through the Prefect API.

Real: the migrate_redis flow (redis-server source, moto S3, rehearsal target, dotenv cutover), a Prefect test
server, the service's HTTP stack, Slack's signing scheme (HMAC-SHA256 of ``v0:{ts}:{body}``, computed here
independently of slack_sdk). A stand-in (tests/support/slack.py) plays Slack: it cannot show Slack's UI (the
buttons, the confirm dialog), that Slack really delivers the click to the request URL, its retries on a slow
answer, nor its rate limits. The smaller tests use a probe flow that calls the same ``request_approval``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow

from approval_service.app import Settings, create_app
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.slack import APPROVE_ACTION, REJECT_ACTION
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.sample_data import load_sample
from flows.migrate import migrate_redis
from tasks.approval import request_approval, resume_run
from tests.conftest import make_plan
from tests.support.outcomes import migrated
from tests.support.slack import Recorded, SlackStandIn, click_body, serve_asgi, signed_headers, wait_until

pytestmark = pytest.mark.usefixtures("prefect_server")

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the Slack app's signing secret (a made-up one)
ALICE, BOB, MALLORY = "U0ALICE01", "U0BOB0002", "U0MALLORY"
UI = "http://prefect.internal:4200"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    monkeypatch.setenv("TEST_SLACK_BOT_TOKEN", standin.token)
    yield standin
    standin.stop()


@pytest.fixture
def service(slack: SlackStandIn) -> Iterator[str]:
    """The approval service under uvicorn; it may POST only to the stand-in's response URLs."""
    with serve_asgi(create_app(Settings(signing_secret=SECRET, response_url_prefix=slack.base + "/actions/"))) as url:
        yield url


def _slack_settings(slack: SlackStandIn, approvers: list[str]) -> dict[str, Any]:
    return {"approval": {"enabled": True, "timeout_seconds": 120, "approvers": approvers,
                         "slack_channel": "C0APPROVALS", "ui_url": UI},
            "notifications": {"slack_bot_token_secret": "env:TEST_SLACK_BOT_TOKEN", "slack_channel": "C0MIGRATIONS",
                              "slack_api_url": slack.api_url}}


class Background:
    """Run a flow in a thread; keep its return value or exception."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 120) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow did not finish"
        if self.error:
            raise self.error
        return self.result


def _state(run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def _approval_request(slack: SlackStandIn, n: int = 1) -> tuple[Recorded, Any]:
    """The n-th approval request posted, and the run id its buttons carry (once that run is paused)."""
    msg = slack.wait_for("/api/chat.postMessage", count=n, timeout=120, channel="C0APPROVALS")[n - 1]
    actions = next(b for b in msg.blocks if b["type"] == "actions")
    run_id = json.loads(actions["elements"][0]["value"])["run"]
    wait_until(lambda: _state(run_id).is_paused(), 30, "run paused")
    return msg, run_id


def _click(service: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{service}/slack/interactions", content=body,
                      headers=headers if headers is not None else signed_headers(SECRET, body), timeout=10)


def _response_posts(slack: SlackStandIn, url: str) -> list[Any]:
    return [r.body for r in slack.calls(url.removeprefix(slack.base))]


def test_slack_click_approves_the_real_flow_after_refusing_every_bad_click(
        tmp_path: Path, moto_endpoint: str, bucket: str, source: LocalRedisServer, app_env: Path,
        slack: SlackStandIn, service: str) -> None:
    r, r1 = source.client(), source.client(db=1)
    stats = load_sample(r, db1=r1)
    r.close()
    r1.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)}, **_slack_settings(slack, [ALICE, BOB]))
    running = Background(migrate_redis, plan)
    try:
        msg, run_id = _approval_request(slack)

        # the Block Kit request: the summary the flow built, the run's link, both buttons carrying run + migration
        text = msg.blocks[0]["text"]["text"]
        assert f"*Approve cutover of `{plan.migration_id}`?*" in text
        assert "*Snapshot*" in text and "RDB v10" in text and f"{sum(stats.keys.values())} keys equal" in text
        assert f"db0: {stats.keys[0]} keys" in text and "at `redis://127.0.0.1:" in text and "(0 mismatches)" in text
        assert f"<{UI}/runs/flow-run/{run_id}|" in msg.blocks[1]["elements"][0]["text"]
        buttons = {e["action_id"]: json.loads(e["value"]) for e in msg.blocks[2]["elements"]}
        assert set(buttons) == {APPROVE_ACTION, REJECT_ACTION}
        assert all(v["run"] == run_id and v["migration"] == plan.migration_id for v in buttons.values())

        good = click_body(msg, APPROVE_ACTION, user_id=ALICE, user_name="alice", response_url=slack.response_url())
        refused = {
            "forged signature": (_click(service, good, signed_headers("not-the-secret", good)), 401),
            "stale timestamp": (_click(service, good, signed_headers(SECRET, good, int(time.time()) - 301)), 401),
            "unsigned": (_click(service, good, {"Content-Type": "application/x-www-form-urlencoded"}), 401),
            "tampered body": (_click(service, good.replace(ALICE.encode(), MALLORY.encode()),
                                     signed_headers(SECRET, good)), 401),
            "unauthorised user": (_click(service, click_body(msg, APPROVE_ACTION, user_id=MALLORY,
                                                             response_url=(mallory_url := slack.response_url()))), 403),
            "no payload": (_click(service, b"token=x&team_id=T0"), 400),
            "bad JSON": (_click(service, b"payload=%7Bnot-json"), 400),
            "no action": (_click(service, click_body(msg, APPROVE_ACTION, user_id=ALICE, actions=[])), 400),
            "unknown action": (_click(service, click_body(msg, APPROVE_ACTION, user_id=ALICE, actions=[
                {"action_id": "drop_database", "value": json.dumps(buttons[APPROVE_ACTION])}])), 400),
            "bad run id": (_click(service, click_body(msg, APPROVE_ACTION, user_id=ALICE, actions=[
                {"action_id": APPROVE_ACTION, "value": json.dumps({**buttons[APPROVE_ACTION], "run": "42"})}])), 400),
            "another pause's key": (_click(service, click_body(msg, APPROVE_ACTION, user_id=ALICE, actions=[
                {"action_id": APPROVE_ACTION, "value": json.dumps({**buttons[APPROVE_ACTION], "key": "old"})}])), 409),
        }
        for what, (resp, status) in refused.items():
            assert resp.status_code == status, (what, resp.status_code, resp.text)
            assert _state(run_id).is_paused(), f"run no longer paused after: {what}"
        # the unauthorised user is told, privately; the buttons stay for everyone else
        (told,) = slack.wait_for(mallory_url.removeprefix(slack.base))
        assert told.body["response_type"] == "ephemeral" and told.body["replace_original"] is False
        assert f"<@{MALLORY}> may not decide" in told.body["text"]

        started = time.perf_counter()
        ok = _click(service, good)
        answered_in = time.perf_counter() - started
        assert ok.status_code == 200 and ok.content == b""
        assert answered_in < 3, f"Slack gives 3 s; the service took {answered_in:.2f} s"
        print(f"\nvalid click answered in {answered_in * 1000:.0f} ms (resume included)")

        replay = _click(service, good)  # the same signed request again, within Slack's 5-minute window
        assert replay.status_code == 409 and "closed" in replay.text
        late = _click(service, click_body(msg, REJECT_ACTION, user_id=BOB))
        assert late.status_code == 409

        result = migrated(running.join())
        # the flow went on to a verified cutover, approved by the Slack user
        assert result.approved_by == ALICE and result.keys_verified == sum(stats.keys.values())
        port = result.endpoint.port
        assert f"REDIS_URL=redis://127.0.0.1:{port}/0" in app_env.read_text()
        assert _state(run_id).is_completed()
        assert _click(service, good).status_code == 409  # still nothing to resume

        # the message was closed: through response_url by the service, and by the flow's chat.update
        (closed,) = [b for b in _response_posts(slack, "/actions/") if b.get("replace_original")]
        assert closed["text"] == f":white_check_mark: Approved by <@{ALICE}> (from Slack)"
        assert [b["type"] for b in closed["blocks"]] == ["section", "context", "section"]  # no buttons left
        (update,) = slack.wait_for("/api/chat.update")
        assert update.body["text"] == closed["text"] and update.body["ts"]
        # phase messages went to the notifications channel with the bot token
        phases = [r.body["text"] for r in slack.calls("/api/chat.postMessage", channel="C0MIGRATIONS")]
        assert [p.split(": ")[1] for p in phases] == ["started", "approval-requested", "cutover", "succeeded"]
    finally:
        running.thread.join(60)
        stop_rehearsal_target(plan.workdir)


@flow(name="approval-probe")
def approval_probe(plan: MigrationPlan) -> dict[str, Any]:
    """The approval gate alone: what migrate_redis does at that step, without a migration around it."""
    d = request_approval(plan, "### Approve cutover of `probe`?\n\n- **Keys**: db0: 3 keys", poll_interval=1)
    return {"approved": d.approved, "approver": d.approver, "note": d.note}


def _probe_plan(slack: SlackStandIn, approvers: list[str], timeout: int = 120) -> MigrationPlan:
    s = _slack_settings(slack, approvers)
    s["approval"]["timeout_seconds"] = timeout
    return validate_plan({"migration_id": "probe-approval", "source": {"kind": "host"}, "staging": {"bucket": "bkt"},
                          "target": {"replication_group_id": "probe"}, **s})


def test_empty_allow_list_takes_any_signed_click_and_a_rejection_closes_the_message(
        slack: SlackStandIn, service: str) -> None:
    running = Background(approval_probe, _probe_plan(slack, approvers=[]))
    msg, run_id = _approval_request(slack)
    url = slack.response_url()
    assert _click(service, click_body(msg, REJECT_ACTION, user_id=MALLORY, response_url=url)).status_code == 200
    assert running.join() == {"approved": False, "approver": MALLORY, "note": "from Slack"}
    (closed,) = slack.wait_for(url.removeprefix(slack.base))
    assert closed.body["replace_original"]
    assert closed.body["text"] == f":no_entry: Rejected by <@{MALLORY}> (from Slack)"


def test_a_decision_in_the_ui_closes_the_slack_buttons_and_an_ignored_one_reposts_them(
        slack: SlackStandIn, service: str) -> None:
    running = Background(approval_probe, _probe_plan(slack, approvers=[ALICE, "carol"]))
    first, run_id = _approval_request(slack)
    # someone not on the list answers in the Prefect UI: ignored, a new request (new pause key) is posted
    resume_run(run_id, "approve", "mallory", "typed in the UI")
    second, _ = _approval_request(slack, 2)
    assert slack.wait_for("/api/chat.update")[0].body["text"].startswith(":warning: approve by 'mallory' ignored")
    stale = _click(service, click_body(first, APPROVE_ACTION, user_id=ALICE))
    assert stale.status_code == 409 and "superseded" in stale.text
    assert _state(run_id).is_paused()
    # carol decides in the UI: the Slack message loses its buttons, and a click on it now gets 409
    resume_run(run_id, "approve", "carol")
    assert running.join() == {"approved": True, "approver": "carol", "note": ""}
    update = slack.wait_for("/api/chat.update", count=2)[1].body
    assert update["text"] == ":white_check_mark: Approved by carol" and "actions" not in json.dumps(update["blocks"])
    url = slack.response_url()
    late = _click(service, click_body(second, REJECT_ACTION, user_id=ALICE, response_url=url))
    assert late.status_code == 409
    assert slack.wait_for(url.removeprefix(slack.base))[0].body["response_type"] == "ephemeral"


def test_no_decision_closes_the_slack_message_with_the_timeout(slack: SlackStandIn, service: str) -> None:
    running = Background(approval_probe, _probe_plan(slack, approvers=[ALICE], timeout=10), return_state=True)
    msg, run_id = _approval_request(slack)
    state = running.join(60)
    assert state.is_failed() and "no approval within 10s" in (state.message or "")
    assert slack.wait_for("/api/chat.update")[0].body["text"] == ":hourglass: No decision within 10s: rolled back"
    assert _click(service, click_body(msg, APPROVE_ACTION, user_id=ALICE)).status_code == 409


def test_unknown_run_is_409_and_healthz_reports_the_prefect_api(slack: SlackStandIn, service: str) -> None:
    fake = Recorded("/api/chat.postMessage", {}, {"channel": "C0APPROVALS", "text": "x", "blocks": [
        {"type": "actions", "block_id": "b", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "text": {"type": "plain_text", "text": "Approve"},
             "value": json.dumps({"run": "00000000-0000-4000-8000-000000000000", "migration": "probe-approval",
                                  "key": "k"})}]}]})
    resp = _click(service, click_body(fake, APPROVE_ACTION, user_id=ALICE))
    assert resp.status_code == 409 and "does not exist" in resp.text
    health = httpx.get(f"{service}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"ok": True, "prefect_api": "ok"}
