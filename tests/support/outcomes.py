"""Typed views of what a test reads back: a flow's result, the journal's sections."""

from __future__ import annotations

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.findings import Finding, PreflightReport
from elasticache_migrate.state import Extracted, MigrationResult, RehearsalRecord

__all__ = ["migrated", "preflight_report", "finding", "journaled_copy", "rehearsal_target"]


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


def finding(findings: list[Finding], check: str, severity: str, text: str) -> Finding:
    """The first finding of ``check`` at ``severity`` whose text holds ``text`` (fails the test, listing all,
    if none)."""
    hits = [f for f in findings if f.check == check and f.severity == severity and text in f.seen]
    assert hits, f"no {severity} {check} finding with {text!r} in:\n" + "\n".join(map(str, findings))
    return hits[0]
