"""The approval service: Slack's Approve / Reject clicks → a typed resume of the paused migration run.

``POST /slack/interactions`` (Slack's "Interactivity request URL"), in this order:

1. signature and 5-minute replay window (``slack_sdk.signature.SignatureVerifier``)  → 401
2. the form's ``payload``: block_actions, one of our buttons, a flow run id            → 400
3. the run, read through the Prefect API (unknown run, or not this migration's)      → 409
4. the clicking Slack user id on the plan's ``approval.approvers`` (the run's own
   parameters; empty = any signed click) and on ``SLACK_APPROVERS`` if set           → 403
5. the run still paused, for the very pause the buttons were posted for              → 409
6. resume with ``{decision, approver: <Slack user id>, note: "from Slack"}``          → 200

Then, after the answer is sent (Slack allows 3 s), the message is updated through the payload's
``response_url``: on success the buttons are replaced by "Approved by <@U…>"; a refusal is shown to the
clicking user only (an ephemeral message), so a stray or unauthorised click never removes the buttons.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from approval_service.interaction import BadInteraction, Click, parse_interaction
from elasticache_migrate.approval import approver_in
from elasticache_migrate.slack import closed_message, outcome_text
from tasks.approval import ResumeRefused, resume_run

__all__ = ["Settings", "Outcome", "create_app", "decide", "SLACK_NOTE"]

log = logging.getLogger("approval_service")

SLACK_NOTE = "from Slack"
MAX_BODY = 1_000_000  # Slack's interaction payloads are a few kB (the message's blocks included)


@dataclass(frozen=True)
class Settings:
    """The service's configuration (``Settings.from_env()`` for the command line)."""

    signing_secret: str
    approvers: frozenset[str] = frozenset()  # SLACK_APPROVERS: a further restriction on every plan's list
    response_url_prefix: str = "https://hooks.slack.com/"  # only ever POST to Slack's own response URLs

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """SLACK_SIGNING_SECRET (required), SLACK_APPROVERS (optional, comma-separated Slack user ids),
        SLACK_RESPONSE_URL_PREFIX (optional). PREFECT_API_URL is read by Prefect's own client.

        Raises:
            ValueError: SLACK_SIGNING_SECRET is not set.
        """
        secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        if not secret:
            raise ValueError("SLACK_SIGNING_SECRET is not set (Slack app → Basic Information → Signing Secret)")
        approvers = frozenset(a.strip() for a in env.get("SLACK_APPROVERS", "").split(",") if a.strip())
        prefix = env.get("SLACK_RESPONSE_URL_PREFIX", "").strip() or cls.response_url_prefix
        return cls(signing_secret=secret, approvers=approvers, response_url_prefix=prefix)


@dataclass(frozen=True)
class Outcome:
    """The answer to one click: HTTP status and the text shown in Slack."""

    status: int
    text: str

    @property
    def resumed(self) -> bool:
        return self.status == 200


_decide_lock = threading.Lock()  # one decision at a time: two racing clicks cannot both pass the "paused" check


def decide(click: Click, settings: Settings) -> Outcome:
    """Steps 3–6: read the run, check the user and the pause, resume (blocking: Prefect API calls)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with _decide_lock:
        try:
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(click.run_id)
        except ObjectNotFound:
            return Outcome(409, f"Flow run `{click.run_id}` does not exist on this Prefect server.")
        except httpx.HTTPError as exc:
            log.error("Prefect API unreachable: %s", exc)
            return Outcome(503, "The Prefect API cannot be reached right now; decide in the Prefect UI.")
        plan = (run.parameters or {}).get("plan")
        if not isinstance(plan, dict) or plan.get("migration_id") != click.migration_id:
            return Outcome(409, f"Flow run `{click.run_id}` is not migration `{click.migration_id}`.")
        approvers = list((plan.get("approval") or {}).get("approvers") or [])
        service_ok = not settings.approvers or approver_in(sorted(settings.approvers), click.user_id)
        if not approver_in(approvers, click.user_id) or not service_ok:
            log.warning("refused %s of run %s by %s (%s): not an approver", click.decision, click.run_id,
                        click.user_id, click.user_name)
            return Outcome(403, f"<@{click.user_id}> may not decide this cutover: not in approval.approvers.")
        state = run.state
        if state is None or not state.is_paused():
            name = state.name if state else "not started"
            return Outcome(409, f"This approval request is closed: the run is {name} (already decided, timed out "
                                "or ended).")
        if state.state_details.pause_key != click.pause_key:
            return Outcome(409, "This approval request was superseded by a newer one for the same run.")
        try:
            resume_run(click.run_id, click.decision, click.user_id, SLACK_NOTE)
        except ResumeRefused as exc:
            return Outcome(409, f"The run was not resumed: {exc}")
        except httpx.HTTPError as exc:
            log.error("Prefect API failed during resume: %s", exc)
            return Outcome(503, "The Prefect API failed during the resume; check the run in the Prefect UI.")
    log.info("run %s resumed: %s by %s (%s)", click.run_id, click.decision, click.user_id, click.user_name)
    return Outcome(200, outcome_text(click.decision, click.user_id, SLACK_NOTE))


def respond(click: Click, outcome: Outcome, settings: Settings) -> None:
    """Update the Slack message through ``response_url``: close it on success, tell only the clicker otherwise."""
    url = click.response_url
    if not url:
        return
    if not url.startswith(settings.response_url_prefix):
        log.warning("not posting to a response_url outside %s", settings.response_url_prefix)
        return
    if outcome.resumed:
        body: dict[str, Any] = {**closed_message(click.message, outcome.text), "replace_original": True}
    else:
        body = {"response_type": "ephemeral", "replace_original": False, "text": outcome.text}
    try:
        httpx.post(url, json=body, timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("Slack message not updated through response_url: %s", type(exc).__name__)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app: ``POST /slack/interactions`` and ``GET /healthz``."""
    verifier = SignatureVerifier(settings.signing_secret)

    async def interactions(request: Request) -> Response:
        started = time.perf_counter()
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("request too large", 413)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("request too large", 413)
        if not verifier.is_valid_request(body, dict(request.headers)):
            log.warning("refused an interaction with a bad signature or a stale timestamp")
            return PlainTextResponse("invalid signature or stale timestamp", 401)
        try:
            click = parse_interaction(body)
        except BadInteraction as exc:
            return PlainTextResponse(f"malformed interaction: {exc}", 400)
        outcome = await run_in_threadpool(decide, click, settings)
        log.info("click %s on run %s → %s in %.0f ms", click.decision, click.run_id, outcome.status,
                 (time.perf_counter() - started) * 1000)
        task = BackgroundTask(respond, click, outcome, settings)
        if outcome.resumed:
            return Response(status_code=200, background=task)  # Slack wants an empty 200 for block_actions
        return PlainTextResponse(outcome.text, outcome.status, background=task)

    async def healthz(request: Request) -> Response:
        from prefect.client.orchestration import get_client

        def check() -> Exception | None:
            with get_client(sync_client=True) as client:
                return client.api_healthcheck()

        problem = await run_in_threadpool(check)
        if problem is not None:
            return JSONResponse({"ok": False, "prefect_api": str(problem)}, 503)
        return JSONResponse({"ok": True, "prefect_api": "ok"})

    return Starlette(routes=[Route("/slack/interactions", interactions, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])
