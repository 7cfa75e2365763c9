"""The window lock's pure decisions: whose name is a lock, and who holds the window (lowest client id wins)."""

from __future__ import annotations

from elasticache_migrate.errors import WindowLocked
from elasticache_migrate.source.lock import (
    LockHolder,
    blocking_holder,
    lock_holders,
    lock_name,
    locked_error,
    parse_holder,
)
from elasticache_migrate.source.quiesce import blocking_clients


def entry(cid: int, name: str, addr: str = "127.0.0.1:5000", age: str = "3") -> dict[str, str]:
    return {"id": str(cid), "name": name, "addr": addr, "age": age, "flags": "N"}


def test_lock_name_round_trips_through_client_list() -> None:
    name = lock_name("shop-sessions-2026-12", "0b6f3c2e-1d2a-4c5b-9e8f-112233445566")
    assert " " not in name and name.startswith("elasticache-migrate:lock:")
    holder = parse_holder(entry(7, name, age="42"))
    assert holder == LockHolder(7, "shop-sessions-2026-12", "0b6f3c2e-1d2a-4c5b-9e8f-112233445566",
                                "127.0.0.1:5000", 42)


def test_other_clients_are_not_holders() -> None:
    for name in ["", "elasticache-migrate:m-1", "app", "elasticache-migrate:lock:", "elasticache-migrate:lock:x"]:
        assert parse_holder(entry(3, name)) is None, name
    assert parse_holder({"name": lock_name("m-1", "r"), "id": "not-a-number"}) is None


def test_lowest_client_id_wins_whatever_the_migration_id() -> None:
    clients = [entry(12, lock_name("m-b", "run-b")), entry(5, "app"), entry(9, lock_name("m-a", "run-a")),
               entry(20, lock_name("m-a", "run-c"))]
    holders = lock_holders(clients)
    assert [h.client_id for h in holders] == [9, 12, 20]
    a, b, c = holders
    assert blocking_holder(holders, a) is None         # the oldest holds the window
    assert blocking_holder(holders, b) == a            # a newer one, other migration: refused, a named
    assert blocking_holder(holders, c) == a            # same migration id, other run: refused too


def test_a_simultaneous_start_is_decided_the_same_way_on_both_sides() -> None:
    holders = lock_holders([entry(31, lock_name("m-1", "run-x")), entry(30, lock_name("m-1", "run-y"))])
    x, y = holders[1], holders[0]
    assert blocking_holder(holders, y) is None and blocking_holder(holders, x) == y


def test_a_runs_own_older_connection_is_not_in_its_way() -> None:
    holders = lock_holders([entry(4, lock_name("m-1", "run-x")), entry(8, lock_name("m-1", "run-x"))])
    assert blocking_holder(holders, holders[1]) is None


def test_the_refusal_names_the_holder_and_what_to_do() -> None:
    err = locked_error(LockHolder(9, "m-a", "run-a", "10.0.0.5:41234", 300), "m-b")
    assert isinstance(err, WindowLocked) and not err.retryable and err.step == "window-lock"
    text = str(err)
    for part in ("m-a", "run-a", "10.0.0.5:41234", "300s", "m-b changed nothing", "wait for run run-a",
                 "cancel it", "CLIENT KILL ID 9"):
        assert part in text, part


def test_quiesce_does_not_wait_for_lock_connections() -> None:
    """The lock's connection stays through the window: quiesce must never count it as an application client."""
    clients = [entry(9, lock_name("m-a", "run-a")), entry(10, "app")]
    assert [c["name"] for c in blocking_clients(clients, "m-b", [])] == ["app"]
