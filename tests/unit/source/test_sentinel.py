"""source.redis Sentinel fields and the pure parts of elasticache_migrate.source.sentinel (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.errors import PlanError
from elasticache_migrate.plan import RedisConnection, sentinel_address_problem, validate_plan
from elasticache_migrate.source.sentinel import format_address, parse_address, sentinel_addresses


def _plan(**redis: Any) -> dict[str, Any]:
    return {"migration_id": "orders-2024", "source": {"kind": "host", "redis": redis},
            "staging": {"bucket": "my-staging"}, "target": {"replication_group_id": "app-cache"}}


def test_sentinel_list_in_plan_order() -> None:
    conn = RedisConnection(host="10.0.0.11", port=26379, sentinel_master="app",
                           sentinels=["10.0.0.12:26379", " [fd00::13]:26380 "])
    assert sentinel_addresses(conn) == [("10.0.0.11", 26379), ("10.0.0.12", 26379), ("fd00::13", 26380)]
    assert format_address(("fd00::13", 26380)) == "[fd00::13]:26380"
    assert parse_address("sentinel-1.internal:26379") == ("sentinel-1.internal", 26379)


@pytest.mark.parametrize("value", ["10.0.0.12", "10.0.0.12:", ":26379", "h:0", "h:70000", "h:port", "fd00::1:26379",
                                   "a b:1", "[fd00::1:26379"])
def test_bad_sentinel_addresses_are_named(value: str) -> None:
    assert sentinel_address_problem(value)
    with pytest.raises(PlanError, match="source.redis.sentinels"):
        validate_plan(_plan(sentinel_master="app", sentinels=[value]))


def test_sentinel_fields_need_a_master_name_and_no_repeats() -> None:
    with pytest.raises(PlanError, match="need\\(s\\) sentinel_master"):
        validate_plan(_plan(sentinels=["10.0.0.12:26379"]))
    with pytest.raises(PlanError, match="sentinel_password_secret"):
        validate_plan(_plan(sentinel_master="app", sentinel_password_secret="SENTINEL_PW"))  # not env:/prefect:
    with pytest.raises(PlanError, match="more than once"):
        validate_plan(_plan(sentinel_master="app", sentinels=["s2:26379", "s2:26379"]))
    with pytest.raises(PlanError, match="repeats host:port"):
        validate_plan(_plan(host="s1", port=26379, sentinel_master="app", sentinels=["s1:26379"]))
    ok = validate_plan(_plan(host="s1", port=26379, sentinel_master="app", sentinels=["s2:26379"],
                             sentinel_username="sentinel-user", sentinel_password_secret="env:SENTINEL_PW"))
    assert ok.source.redis.sentinels == ["s2:26379"]
