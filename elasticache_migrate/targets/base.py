"""The target seam: where the data goes. A backend creates (or adopts) a target seeded from the staged RDB,
waits until it serves the data, and can delete it; nothing after wait-available knows which one it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from elasticache_migrate.log import Log
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint, RehearsalRecord, StagedObject

__all__ = ["TargetKind", "TargetHandle", "TargetBackend"]

TargetKind = Literal["elasticache", "rehearsal"]


@dataclass(frozen=True)
class TargetHandle:
    """What create made (or adopted).

    ``rehearsal`` is the local server standing in for ElastiCache (a rehearsal target only; None otherwise).
    """

    kind: TargetKind
    id: str
    adopted: bool
    rehearsal: RehearsalRecord | None = None


class TargetBackend(Protocol):
    """A place the data can go."""

    kind: TargetKind

    def create(self, plan: MigrationPlan, obj: StagedObject, log: Log) -> TargetHandle:
        """Start creating the target seeded from ``obj`` (or adopt the one an earlier run made)."""
        ...

    def wait_available(self, plan: MigrationPlan, handle: TargetHandle, log: Log) -> Endpoint:
        """Block until the target serves the seeded data; return its endpoint."""
        ...

    def delete(self, plan: MigrationPlan, handle: TargetHandle, log: Log) -> None:
        """Remove a target this run created (rollback with target.delete_on_rollback)."""
        ...
