"""Typed views of what a test reads back: a flow's result, the journal's sections."""

from __future__ import annotations

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.findings import PreflightReport
from elasticache_migrate.state import Extracted, MigrationResult, RehearsalRecord

__all__ = ["migrated", "preflight_report", "journaled_copy", "rehearsal_target"]


def migrated(value: object) -> MigrationResult:
    """The result of a completed migration (fails the test on anything else)."""
    assert isinstance(value, MigrationResult), f"not a migration's result: {value!r}"
    return value


def preflight_report(value: object) -> PreflightReport:
    """The result of a plan-only run."""
    assert isinstance(value, PreflightReport), f"not a plan-only result: {value!r}"
    return value


def journaled_copy(plan: MigrationPlan) -> Extracted:
    """The local copy the journal records (fails the test when there is none)."""
    copy = Journal(plan.workdir).read().extracted
    assert copy is not None, "the journal records no local copy"
    return copy


def rehearsal_target(plan: MigrationPlan) -> RehearsalRecord:
    """The rehearsal target the journal records (fails the test when there is none)."""
    target = Journal(plan.workdir).read().rehearsal
    assert target is not None, "the journal records no rehearsal target"
    return target
