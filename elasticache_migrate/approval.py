"""The approval gate's rules, without Prefect: who may decide a cutover, what a decision is, and what the Slack
request says when it is closed without one.

The pause itself (``pause_flow_run`` with a typed form) and the resume are Prefect's, in :mod:`tasks.approval`;
the approval service (``approval_service/``) applies the same allow-list rule to Slack clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

from elasticache_migrate.plan import MigrationPlan

__all__ = ["TIMEOUT_APPROVER", "Decision", "approver_allowed", "approver_in", "timed_out_outcome", "ignored_outcome",
           "cancelled_outcome",
           "refused_description"]

TIMEOUT_APPROVER = "(approval-timeout)"  # reserved: the deadline's own answer, refused from people


@dataclass(frozen=True)
class Decision:
    """The outcome of the approval gate."""

    approved: bool
    approver: str
    note: str


def approver_allowed(plan: MigrationPlan, approver: str) -> bool:
    """Whether ``approver`` is on the plan's allow-list (an empty list allows anyone who can resume)."""
    return approver_in(plan.approval.approvers, approver)


def approver_in(approvers: list[str], approver: str) -> bool:
    """The allow-list rule itself (case-insensitive; empty allows anyone; never the timeout's reserved name)."""
    if approver.strip() == TIMEOUT_APPROVER or not approver.strip():
        return False
    allowed = [a.strip().lower() for a in approvers]
    return not allowed or approver.strip().lower() in allowed


def timed_out_outcome(timeout: int) -> str:
    """The closed Slack request when nobody decided in time."""
    return f":hourglass: No decision within {timeout}s: rolled back"


def cancelled_outcome() -> str:
    """The closed Slack request when the run was cancelled (Prefect UI/API) while it waited."""
    return ":no_entry: Run cancelled while waiting for approval: rolled back"


def ignored_outcome(decision: str, approver: str) -> str:
    """The closed Slack request when someone off the allow-list answered (a new request follows)."""
    return f":warning: {decision} by {approver!r} ignored: not in approval.approvers; a new request follows"


def refused_description(plan: MigrationPlan, approver: str, summary_md: str) -> str:
    """The next request's summary after a decision from ``approver``, who may not decide."""
    return (f"**{approver!r} may not decide this cutover** (allowed: "
            f"{', '.join(plan.approval.approvers)}).\n\n{summary_md}")
