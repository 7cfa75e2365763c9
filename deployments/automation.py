"""Create (or bring up to date) a Prefect automation: a migrate-redis run Failed or Crashed → a webhook.

The flow's own ``on_failure`` / ``on_crashed`` hook already posts to Slack, but only while its process lives;
a worker killed mid-window (OOM, host reboot) runs no hook. The server sees the state change either way, so
this automation, run by the Prefect server itself (automations and SendNotification work on the open-source
server), is the backstop.

    FAILURE_WEBHOOK_URL=https://hooks.slack.com/services/… python -m scripts.create_failure_automation
    python -m scripts.create_failure_automation --webhook-block slack-webhook/ops-alerts   # an existing block

It saves a "Custom Webhook" notification block whose URL is held as a secret value (the body is
``{"text": subject + body}``, the shape Slack incoming webhooks take; any JSON webhook receives it too),
then creates the automation, or updates the one with the same name. Run it again: nothing changes.
Needs PREFECT_API_URL pointing at the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["TRIGGER_EVENTS", "desired_automation", "ensure_failure_automation", "save_webhook_block", "main"]

TRIGGER_EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
BODY = (
    "Flow run {{ flow_run.name }} ({{ flow_run.id }}) of {{ flow.name }} entered {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\n"
    "Parameters hold the plan (migration_id {{ flow_run.parameters.plan.migration_id }}). "
    "The flow rolls back before it fails; a Crashed run may not have: check the source is serving and the "
    "app's config, then re-run with the same migration_id."
)


def save_webhook_block(name: str, url: str) -> Any:
    """Save (overwrite) a Custom Webhook block that POSTs ``{"text": …}`` to ``url``; returns its document id."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=name, url="{{webhook_url}}", method="POST", json_data={"text": "{{subject}}\n{{body}}"},
        secrets={"webhook_url": url},  # stored as a secret, not in the block's plain fields
    )
    block.save(name, overwrite=True)
    return block._block_document_id


def desired_automation(name: str, flow_name: str, block_document_id: Any, ui_url: str | None = None) -> Any:
    """The automation as it should be (pure: no API call)."""
    from prefect.automations import Automation, EventTrigger, Posture, SendNotification

    body = BODY + (f"\n{ui_url.rstrip('/')}/runs/flow-run/{{{{ flow_run.id }}}}" if ui_url else "")
    return Automation(
        name=name,
        description=f"Flow runs of {flow_name!r} entering Failed or Crashed → webhook (python -m "
                    "scripts.create_failure_automation)",
        enabled=True,
        trigger=EventTrigger(
            expect=set(TRIGGER_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": flow_name},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_document_id,
                                  subject=f"{flow_name}: run {{{{ flow_run.name }}}} {{{{ flow_run.state.name }}}}",
                                  body=body)],
    )


def _comparable(automation: Any) -> dict[str, Any]:
    data = automation.model_dump(mode="json", exclude={"id", "owner_resource", "created", "updated"})
    data["trigger"].pop("id", None)
    data["trigger"]["expect"] = sorted(data["trigger"]["expect"])
    return data


def ensure_failure_automation(*, name: str, flow_name: str, block_document_id: Any,
                              ui_url: str | None = None) -> tuple[Any, str]:
    """Create the automation, update it if it differs, or leave it; duplicates of the name are removed.

    Returns:
        (the automation as stored, "created" | "updated" | "unchanged")
    """
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client

    want = desired_automation(name, flow_name, block_document_id, ui_url)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(name=name)
        for extra in existing[1:]:
            client.delete_automation(extra.id)
    if not existing:
        return want.create(), "created"
    have = Automation(**existing[0].model_dump())
    if _comparable(have) == _comparable(want):
        return have, "unchanged"
    want.id = have.id
    want.update()
    return Automation.read(id=have.id), "updated"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="migrate-redis failed or crashed", help="automation name (its identity)")
    ap.add_argument("--flow-name", default="migrate-redis", help="flow whose runs are watched")
    ap.add_argument("--webhook-url-env", default="FAILURE_WEBHOOK_URL",
                    help="environment variable holding the webhook URL (kept out of argv and shell history)")
    ap.add_argument("--block-name", default="migrate-redis-failures", help="Custom Webhook block to save")
    ap.add_argument("--webhook-block", help="use an existing notification block instead, as TYPE-SLUG/NAME "
                                            "(e.g. slack-webhook/ops-alerts)")
    ap.add_argument("--ui-url", help="Prefect UI base URL, for a link to the run in the message")
    args = ap.parse_args(argv)

    if args.webhook_block:
        from prefect.blocks.core import Block

        block: Block = Block.load(args.webhook_block)  # type: ignore[assignment]  # sync context: a Block
        block_id = block._block_document_id
    else:
        url = os.environ.get(args.webhook_url_env, "").strip()
        if not url:
            print(f"set {args.webhook_url_env} to the webhook URL, or pass --webhook-block TYPE/NAME", file=sys.stderr)
            return 2
        block_id = save_webhook_block(args.block_name, url)
    automation, what = ensure_failure_automation(name=args.name, flow_name=args.flow_name,
                                                 block_document_id=block_id, ui_url=args.ui_url)
    print(f"automation {automation.name!r} ({automation.id}) {what}: {', '.join(TRIGGER_EVENTS)} of flow "
          f"{args.flow_name!r} → notification block {block_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
