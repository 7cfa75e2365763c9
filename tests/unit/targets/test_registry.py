"""The target registry and the handle create hands on; which local server stands in for an ElastiCache engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.state import RehearsalRecord
from elasticache_migrate.targets import TargetHandle, backend_for
from elasticache_migrate.targets.elasticache import ElastiCacheTarget
from elasticache_migrate.targets.rehearsal import RehearsalTarget, rehearsal_binary_name
from tests.conftest import make_plan


@pytest.mark.parametrize(("kind", "cls"), [("elasticache", ElastiCacheTarget), ("rehearsal", RehearsalTarget)])
def test_backend_for_the_plans_target_kind(kind: str, cls: type) -> None:
    plan = make_plan(tmp_path=Path("/tmp/unused"), moto_endpoint="http://127.0.0.1:9", bucket="unused-bucket",
                     source_port=6379, target={"kind": kind})
    backend = backend_for(plan)
    assert isinstance(backend, cls) and backend.kind == kind


def test_handle_is_a_typed_value() -> None:
    record = RehearsalRecord(pid=42, port=6390, binary="redis-7.0", version="7.0.15", workdir="/w", seeded_from="ab")
    handle = TargetHandle(kind="rehearsal", id="app-cache", adopted=False, rehearsal=record)
    assert handle.rehearsal is not None and handle.rehearsal.port == 6390
    assert TargetHandle("elasticache", "app-cache", True).rehearsal is None
    assert TargetHandle("elasticache", "g", False) == TargetHandle(kind="elasticache", id="g", adopted=False)


@pytest.mark.parametrize(("engine", "version", "binary"), [
    ("redis", "7.1", "redis-7.0"), ("redis", "7.0", "redis-7.0"), ("redis", "6.2", "redis-6.2"),
    ("redis", "6.0", "redis-6.2"), ("redis", "5.0.6", "redis-5.0"), ("redis", "4.0.10", None),
    ("valkey", "7.2", "valkey-8.1"), ("valkey", "8.0", "valkey-8.1"), ("valkey", "9.0", "valkey-9.1"),
    ("valkey", "9.1", "valkey-9.1"),
])
def test_rehearsal_binary_name(engine: str, version: str, binary: str | None) -> None:
    assert rehearsal_binary_name(engine, version) == binary
