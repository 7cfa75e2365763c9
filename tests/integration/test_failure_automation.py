"""The failure automation on a real Prefect test server: created once (a second run changes nothing), read back
through the API with the right trigger, then fired by a Failed run of a flow named migrate-redis, delivering
to a webhook receiver on 127.0.0.1 (the Slack stand-in's incoming-webhook endpoint).

What this cannot show: delivery to the real Slack (unreachable here) and a true Crashed run (a killed worker);
the Crashed event is in the trigger and goes through the same path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from prefect import flow

from deployments.automation import TRIGGER_EVENTS, main
from tests.support.slack import SlackStandIn

pytestmark = pytest.mark.usefixtures("prefect_server")
NAME = "test: migrate-redis failed or crashed"


@pytest.fixture
def receiver() -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    yield standin
    standin.stop()


@flow(name="migrate-redis")
def failing_migration(plan: dict[str, Any]) -> None:
    """Stands in for a migrate-redis run that fails (the automation matches on the flow's name only)."""
    raise RuntimeError(f"simulated failure of {plan['migration_id']}")


def test_automation_is_created_once_and_fires_on_a_failed_run(receiver: SlackStandIn,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import EventTrigger
    from prefect.events.schemas.events import ResourceSpecification

    url = receiver.webhook_url
    monkeypatch.setenv("TEST_FAILURE_WEBHOOK", url)
    args = ["--name", NAME, "--webhook-url-env", "TEST_FAILURE_WEBHOOK", "--block-name", "test-migrate-failures"]
    try:
        assert main(args) == 0
        assert main(args) == 0
        out = capsys.readouterr().out
        assert " created: " in out and " unchanged: " in out
        assert main([*args, "--ui-url", "http://prefect.internal:4200"]) == 0  # a changed setting: updated in place
        assert " updated: " in capsys.readouterr().out

        with get_client(sync_client=True) as client:
            (stored,) = client.read_automations_by_name(name=NAME)  # exactly one, read back through the API
        trigger = stored.trigger
        assert isinstance(trigger, EventTrigger)
        assert set(trigger.expect) == set(TRIGGER_EVENTS) and trigger.posture == "Reactive"
        assert trigger.threshold == 1
        related = trigger.match_related
        related = related[0] if isinstance(related, list) else related
        assert isinstance(related, ResourceSpecification)
        assert related.model_dump() == {"prefect.resource.role": "flow", "prefect.resource.name": "migrate-redis"}
        (action,) = stored.actions
        assert action.type == "send-notification"
        block = cast(CustomWebhookNotificationBlock, CustomWebhookNotificationBlock.load("test-migrate-failures"))
        assert block._block_document_id == action.block_document_id
        assert block.url == "{{webhook_url}}" and url not in block.model_dump_json()  # the URL is a secret value

        state = failing_migration({"migration_id": "orders-cache"}, return_state=True)
        assert state.is_failed()
        (posted,) = receiver.wait_for("/services/", timeout=30)
        assert posted.path == url.removeprefix(receiver.base)
        assert "migrate-redis" in posted.body["text"] and "Failed" in posted.body["text"]
        assert "simulated failure of orders-cache" in posted.body["text"]
        assert "(migration_id orders-cache)" in posted.body["text"]
        run_id = state.state_details.flow_run_id
        assert f"http://prefect.internal:4200/runs/flow-run/{run_id}" in posted.body["text"]
    finally:
        try:
            # later tests' failed runs must not post to a stopped receiver
            cast(Automation, Automation.read(name=NAME)).delete()
        except ValueError:
            pass
