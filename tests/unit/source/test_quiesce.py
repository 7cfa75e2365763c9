"""The quiesce engine's pure decisions: how a server of each version pauses writes, what refusing them sets, which
connected clients are the application's. No server."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.source.quiesce import (
    REFUSE_WRITES_REPLICAS,
    blocking_clients,
    describe_client,
    pause_mode,
    refuse_writes_settings,
)

MID = "orders-2024"


@pytest.mark.parametrize(
    ("version", "mode"),
    [((7, 0, 15), "client-pause-write"), ((6, 2, 0), "client-pause-write"), ((6, 0, 9), "refuse-writes"),
     ((5, 0, 10), "refuse-writes"), ((3, 2, 6), "refuse-writes")],
)
def test_pause_mode(version: tuple[int, int, int], mode: str) -> None:
    assert pause_mode(version) == mode


@pytest.mark.parametrize(
    ("version", "prefix"), [((3, 2, 6), "min-slaves"), ((4, 0, 14), "min-slaves"), ((5, 0, 10), "min-replicas"),
                            ((6, 0, 9), "min-replicas")],
)
def test_refuse_writes_settings_names(version: tuple[int, int, int], prefix: str) -> None:
    got = refuse_writes_settings(version, {f"{prefix}-to-write": "0", f"{prefix}-max-lag": "10"})
    assert got == {f"{prefix}-to-write": str(REFUSE_WRITES_REPLICAS)}


def test_refuse_writes_settings_turns_on_max_lag() -> None:
    # With max-lag 0 Redis skips the min-slaves check entirely: writes would still be accepted.
    got = refuse_writes_settings((3, 2, 6), {"min-slaves-to-write": "0", "min-slaves-max-lag": "0"})
    assert got == {"min-slaves-to-write": str(REFUSE_WRITES_REPLICAS), "min-slaves-max-lag": "10"}
    assert int(got["min-slaves-to-write"]) > 1000  # above any real replica count


def client(**kw: Any) -> dict[str, Any]:
    return {"id": "1", "addr": "10.0.0.5:51234", "name": "", "flags": "N", "cmd": "get", **kw}


def test_blocking_clients_keeps_only_application_clients() -> None:
    app = client(addr="10.0.0.5:51234", name="", flags="N")
    app_named = client(addr="10.0.0.6:40000", name="sidekiq-worker", flags="N")
    clients = [
        client(name=f"elasticache-migrate:{MID}"),               # this run
        client(name="elasticache-migrate:other-run"),             # a previous run of this tool
        client(addr="10.0.0.9:6379", flags="S"),                   # a replica
        client(flags="O", cmd="monitor"),                          # MONITOR
        client(name="sentinel-1a2b3c4d-cmd", flags="N"),           # Sentinel
        client(name="prometheus-exporter"),                        # allow-listed by name
        client(addr="10.0.9.1:3333"),                              # allow-listed by address prefix
        app,
        app_named,
    ]
    left = blocking_clients(clients, MID, allowed=["prometheus-exporter", "10.0.9."])
    assert left == [app, app_named]


def test_blocking_clients_empty_allow_list() -> None:
    app = client(name="exporter")
    assert blocking_clients([app], MID, allowed=[]) == [app]


def test_describe_client_names_what_an_operator_needs() -> None:
    c = client(addr="10.0.0.6:40000", name="", **{"lib-name": "redis-py", "age": "12", "idle": "0"})
    assert describe_client(c) == "addr=10.0.0.6:40000 name=- lib-name=redis-py cmd=get age=12 idle=0"
    assert describe_client(client(name="app", cmd="")) == "addr=10.0.0.5:51234 name=app"  # empty fields left out
