"""Plans for the cutover unit tests (no server is contacted: the AWS endpoint is a closed port)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticache_migrate.plan import MigrationPlan
from tests.conftest import make_plan

__all__ = ["NEW", "plan"]

NEW = "redis://master.app.abc.use1.cache.amazonaws.com:6379/0"


def plan(**cutover: Any) -> MigrationPlan:
    """A plan whose cutover section has these fields."""
    return make_plan(tmp_path=Path("/tmp/unused"), moto_endpoint="http://127.0.0.1:9", bucket="unused-bucket",
                     source_port=6379, cutover=cutover)
