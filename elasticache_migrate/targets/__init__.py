"""Where the data goes: the target backends and the registry that picks one from the plan.

``elasticache`` (:mod:`.elasticache`) creates a replication group through boto3; ``rehearsal``
(:mod:`.rehearsal`) starts a real local server of the same engine seeded from the same S3 object. Both hand
back an :class:`~elasticache_migrate.state.Endpoint`. A backend's module is imported only when it is chosen.
"""

from __future__ import annotations

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.targets.base import TargetBackend, TargetHandle, TargetKind

__all__ = ["TargetKind", "TargetHandle", "TargetBackend", "backend_for"]


def backend_for(plan: MigrationPlan) -> TargetBackend:
    """The target backend the plan names."""
    if plan.target.kind == "rehearsal":
        from elasticache_migrate.targets.rehearsal import RehearsalTarget

        return RehearsalTarget()
    from elasticache_migrate.targets.elasticache import ElastiCacheTarget

    return ElastiCacheTarget()
