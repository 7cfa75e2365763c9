"""A valid plan for pure tests, with sections replaced field by field."""

from __future__ import annotations

import copy
from typing import Any

from elasticache_migrate.plan import MigrationPlan, validate_plan

__all__ = ["MID", "plan"]

MID = "orders-2024"


def plan(**sections: dict[str, Any]) -> MigrationPlan:
    """A valid plan; each keyword replaces fields of one section."""
    data: dict[str, Any] = {
        "migration_id": MID,
        "source": {"kind": "host"},
        "staging": {"bucket": "stage"},
        "target": {"replication_group_id": "app-cache"},
    }
    for name, fields in sections.items():
        data[name] = {**copy.deepcopy(data.get(name, {})), **fields}
    return validate_plan(data)
