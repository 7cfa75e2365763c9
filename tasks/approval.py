"""approval: pause the run for a human decision before cutover, with the facts in the form.

The run pauses with ``pause_flow_run(wait_for_input=ApprovalInput)``: the Prefect UI shows the
markdown summary and a form. With a Slack bot token and ``approval.slack_channel`` the same summary is posted
to Slack with Approve / Reject buttons; the approval service (``approval_service/``) turns a click into
:func:`resume_run` with the same typed input. Each pause has its own key, carried by the buttons, so a click
can only answer the pause it was posted for; once decided (anywhere) the Slack message loses its buttons.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Literal

import httpx
from prefect import get_run_logger, pause_flow_run
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound, TerminationSignal
from prefect.input import RunInput

from elasticache_migrate.approval import (
    TIMEOUT_APPROVER,
    Decision,
    approver_allowed,
    cancelled_outcome,
    ignored_outcome,
    refused_description,
    timed_out_outcome,
)
from elasticache_migrate.errors import ApprovalTimedOut
from elasticache_migrate.log import logger
from elasticache_migrate.notify import close_approval_request, post_approval_request
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.slack import outcome_text

__all__ = ["ApprovalInput", "Decision", "ResumeRefused", "request_approval", "resume_run", "wait_for_paused_run"]


FORM_HINT = "Answer with decision `approve` or `reject`, your name as approver, and an optional note."


class ResumeRefused(RuntimeError):
    """The server did not resume the run (not paused any more, already decided, or invalid input)."""


class ApprovalInput(RunInput):
    """The form shown when the run pauses before cutover."""

    decision: Literal["approve", "reject"]
    approver: str
    note: str = ""


def request_approval(plan: MigrationPlan, summary_md: str, poll_interval: int = 2) -> Decision:
    """Pause until someone approves or rejects; a decision from outside the allow-list is ignored.

    Must be called from the flow itself (a pause is a flow-level state).

    Raises:
        ApprovalTimedOut: no valid decision within approval.timeout_seconds.
        TerminationSignal: the run was cancelled while waiting (the flow's cancel watch, or the worker's SIGTERM);
            the Slack request is closed and the flow rolls back.
    """
    log = get_run_logger()
    if not plan.approval.enabled:
        log.info("approval.enabled is false: cutover approved by the plan itself")
        return Decision(True, "(plan: approval.enabled=false)", "")
    timeout = plan.approval.timeout_seconds
    deadline = time.monotonic() + timeout
    description = summary_md
    run_id = _current_run_id()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval")
        key = f"approval-{time.time_ns()}"  # this pause's key: the Slack buttons carry it
        posted = post_approval_request(plan, description, run_id, key, log)
        # Our own deadline answers the pause with a "timeout" decision, so the run can roll back and end with
        # a message that says why; Prefect's pause timeout (later) is only the backstop if this process dies.
        watchdog = _timeout_watchdog(remaining, f"no decision within {timeout}s")
        try:
            answer = pause_flow_run(
                wait_for_input=ApprovalInput.with_initial_data(description=f"{description}\n\n{FORM_HINT}",
                                                               note=""),
                timeout=int(remaining) + 120,
                poll_interval=poll_interval,
                key=key,
            )
        except FlowPauseTimeout as exc:
            close_approval_request(plan, posted, timed_out_outcome(timeout), log)
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval") from exc
        except TerminationSignal:  # cancelled from the UI/API (flows/cancel.py): the flow rolls back
            close_approval_request(plan, posted, cancelled_outcome(), log)
            raise
        finally:
            watchdog.cancel()
        if answer.approver == TIMEOUT_APPROVER:
            log.warning("no decision within %ss: rolling back", timeout)
            close_approval_request(plan, posted, timed_out_outcome(timeout), log)
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval")
        if not approver_allowed(plan, answer.approver):
            log.warning("ignoring %s from %r: not in approval.approvers; waiting for an allowed approver",
                        answer.decision, answer.approver)
            close_approval_request(plan, posted, ignored_outcome(answer.decision, answer.approver), log)
            description = refused_description(plan, answer.approver, summary_md)
            continue
        log.info("cutover %s by %s%s", "APPROVED" if answer.decision == "approve" else "REJECTED",
                 answer.approver, f": {answer.note}" if answer.note else "")
        close_approval_request(plan, posted, outcome_text(answer.decision, answer.approver, answer.note), log)
        return Decision(answer.decision == "approve", answer.approver, answer.note)


def _current_run_id() -> uuid.UUID | None:
    ctx = FlowRunContext.get()
    return ctx.flow_run.id if ctx and ctx.flow_run else None


def _timeout_watchdog(seconds: float, note: str) -> threading.Timer:
    """A timer that answers this run's pause with the reserved timeout decision."""
    run_id = _current_run_id()

    def fire() -> None:
        if run_id is None:
            return
        try:
            resume_run(run_id, "reject", TIMEOUT_APPROVER, note)
        except ResumeRefused:  # already resumed by a person: nothing to do
            pass
        except (ObjectNotFound, httpx.HTTPError) as exc:  # the API is gone: Prefect's pause timeout is the backstop
            logger.warning("approval deadline: run %s not resumed (%s)", run_id, type(exc).__name__)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def resume_run(flow_run_id: Any, decision: str, approver: str, note: str = "") -> None:
    """Resume a run paused in :func:`request_approval` with a decision (what the UI form and Slack do).

    ``prefect.flow_runs.resume_flow_run`` in one request, plus the check it lacks: a run that stopped being
    paused between its read and the resume (another click won) gets ``ABORT``, which it returns silently.

    Raises:
        ResumeRefused: the server did not accept it (not paused any more, or the input is invalid).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        if not run.state or not run.state.is_paused():
            raise ResumeRefused(f"flow run {flow_run_id} is not paused "
                                f"({run.state.name if run.state else 'no state'})")
        result = client.resume_flow_run(flow_run_id, run_input={"decision": decision, "approver": approver,
                                                                "note": note})
    if result.status != SetStateStatus.ACCEPT:
        reason = getattr(result.details, "reason", None) or result.status.value
        raise ResumeRefused(f"flow run {flow_run_id} was not resumed: {reason}")


def wait_for_paused_run(flow_name: str = "migrate-redis", timeout: float = 600, since: Any = None) -> Any:
    """Block until a run of ``flow_name`` is paused; return its id (used by rehearsals and tests)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.PAUSED]))),
            )
            runs = [r for r in runs if since is None or (r.start_time and r.start_time >= since)]
            if runs:
                return runs[0].id
            time.sleep(0.5)
    raise TimeoutError(f"no paused run of {flow_name} within {timeout}s")
