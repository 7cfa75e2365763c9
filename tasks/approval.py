"""approval: pause the run for a human decision before cutover, with the facts in the form.

The run pauses with ``pause_flow_run(wait_for_input=ApprovalInput)``: the Prefect UI shows the
markdown summary and a form; the Slack approval service (later) resumes it through the same API.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from prefect import get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput

from tasks.errors import ApprovalTimedOut
from tasks.plan import MigrationPlan

__all__ = ["ApprovalInput", "Decision", "approver_allowed", "request_approval", "resume_run", "wait_for_paused_run"]


TIMEOUT_APPROVER = "(approval-timeout)"  # reserved: the deadline's own answer, refused from people


class ApprovalInput(RunInput):
    """The form shown when the run pauses before cutover."""

    decision: Literal["approve", "reject"]
    approver: str
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """The outcome of the approval gate."""

    approved: bool
    approver: str
    note: str


def approver_allowed(plan: MigrationPlan, approver: str) -> bool:
    """Whether ``approver`` is on the plan's allow-list (an empty list allows anyone who can resume)."""
    if approver.strip() == TIMEOUT_APPROVER or not approver.strip():
        return False
    allowed = [a.strip().lower() for a in plan.approval.approvers]
    return not allowed or approver.strip().lower() in allowed


def request_approval(plan: MigrationPlan, summary_md: str, poll_interval: int = 2) -> Decision:
    """Pause until someone approves or rejects; a decision from outside the allow-list is ignored.

    Must be called from the flow itself (a pause is a flow-level state).

    Raises:
        ApprovalTimedOut: no valid decision within approval.timeout_seconds.
    """
    log = get_run_logger()
    if not plan.approval.required:
        log.info("approval.required is false: cutover approved by the plan itself")
        return Decision(True, "(plan: approval.required=false)", "")
    timeout = plan.approval.timeout_seconds
    deadline = time.monotonic() + timeout
    description = summary_md
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval")
        # Our own deadline answers the pause with a "timeout" decision, so the run can roll back and end with
        # a message that says why; Prefect's pause timeout (later) is only the backstop if this process dies.
        watchdog = _timeout_watchdog(remaining, f"no decision within {timeout}s")
        try:
            answer = pause_flow_run(
                wait_for_input=ApprovalInput.with_initial_data(description=description, note=""),
                timeout=int(remaining) + 120,
                poll_interval=poll_interval,
                key=f"approval-{time.time_ns()}",
            )
        except FlowPauseTimeout as exc:
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval") from exc
        finally:
            watchdog.cancel()
        if answer.approver == TIMEOUT_APPROVER:
            log.warning("no decision within %ss: rolling back", timeout)
            raise ApprovalTimedOut(f"no approval within {timeout}s", step="approval")
        if not approver_allowed(plan, answer.approver):
            log.warning("ignoring %s from %r: not in approval.approvers; waiting for an allowed approver",
                        answer.decision, answer.approver)
            description = (f"**{answer.approver!r} may not decide this cutover** (allowed: "
                           f"{', '.join(plan.approval.approvers)}).\n\n{summary_md}")
            continue
        log.info("cutover %s by %s%s", "APPROVED" if answer.decision == "approve" else "REJECTED",
                 answer.approver, f": {answer.note}" if answer.note else "")
        return Decision(answer.decision == "approve", answer.approver, answer.note)


def _timeout_watchdog(seconds: float, note: str) -> threading.Timer:
    """A timer that answers this run's pause with the reserved timeout decision."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    run_id = ctx.flow_run.id if ctx and ctx.flow_run else None

    def fire() -> None:
        if run_id is None:
            return
        try:
            resume_run(run_id, "reject", TIMEOUT_APPROVER, note)
        except Exception:  # noqa: BLE001 - already resumed by a person: nothing to do
            pass

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def resume_run(flow_run_id: Any, decision: str, approver: str, note: str = "") -> None:
    """Resume a run paused in :func:`request_approval` with a decision (what the UI form and Slack do).

    Raises:
        RuntimeError: the server refused the resume (the run is not paused, or the input is invalid).
    """
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input={"decision": decision, "approver": approver, "note": note})


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
