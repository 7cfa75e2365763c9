"""The approval gate's rules (elasticache_migrate.approval): who may decide, and what a closed request says.
(The pause and the resume through Prefect are in tests/integration/test_slack_approval.py.)"""

from __future__ import annotations

from elasticache_migrate.approval import (
    TIMEOUT_APPROVER,
    Decision,
    approver_allowed,
    approver_in,
    ignored_outcome,
    refused_description,
    timed_out_outcome,
)
from tests.support.plans import plan


def test_approver_allowed_case_insensitive() -> None:
    p = plan(approval={"approvers": ["Alice", " U024BE7LH "]})
    assert approver_allowed(p, "alice") is True
    assert approver_allowed(p, "ALICE ") is True
    assert approver_allowed(p, "u024be7lh") is True
    assert approver_allowed(p, "mallory") is False
    assert approver_allowed(p, "") is False


def test_approver_allowed_empty_list_allows_anyone() -> None:
    assert approver_allowed(plan(), "anyone-at-all") is True


def test_the_timeout_name_is_never_a_person() -> None:
    assert approver_in([], TIMEOUT_APPROVER) is False
    assert approver_in([TIMEOUT_APPROVER], f" {TIMEOUT_APPROVER} ") is False
    assert approver_in([], "   ") is False
    assert approver_in(["U0ALICE01"], "U0ALICE01") is True


def test_decision_is_a_value() -> None:
    assert Decision(True, "alice", "") == Decision(True, "alice", "")


def test_closed_request_texts() -> None:
    assert timed_out_outcome(120) == ":hourglass: No decision within 120s: rolled back"
    assert ignored_outcome("approve", "mallory") == (":warning: approve by 'mallory' ignored: not in "
                                                     "approval.approvers; a new request follows")
    p = plan(approval={"approvers": ["alice", "bob"]})
    assert refused_description(p, "mallory", "## Summary") == ("**'mallory' may not decide this cutover** "
                                                               "(allowed: alice, bob).\n\n## Summary")
