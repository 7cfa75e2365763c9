"""The quiesce and fence engines' pure decisions: how a server of each version stops writes, what refusing them
sets, which connected clients are the application's, how often the pause is renewed, the deadlines the approval
shows, what the fence's re-check says when the source moved. No server."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.plan import validate_plan
from elasticache_migrate.source.fence import moved_message
from elasticache_migrate.source.quiesce import (
    REFUSE_WRITES_REPLICAS,
    blocking_clients,
    describe_client,
    lift_fence_hint,
    pause_mode,
    refuse_writes_settings,
    renew_interval,
    replica_config_names,
    utc,
    window_deadlines,
)
from elasticache_migrate.state import QuiesceState, ServerInfo

MID = "orders-2024"


@pytest.mark.parametrize(
    ("version", "mode"),
    [((7, 0, 15), "client-pause-write"), ((6, 2, 0), "client-pause-write"), ((6, 0, 9), "refuse-writes"),
     ((5, 0, 10), "refuse-writes"), ((3, 2, 6), "refuse-writes")],
)
def test_pause_mode(version: tuple[int, int, int], mode: str) -> None:
    assert pause_mode(version) == mode == pause_mode(version, "block")
    assert pause_mode(version, "refuse") == "refuse-writes"  # refuse on every version when the plan says so


@pytest.mark.parametrize(("version", "names"), [((7, 0, 15), ("min-replicas-to-write", "min-replicas-max-lag")),
                                                ((5, 0, 0), ("min-replicas-to-write", "min-replicas-max-lag")),
                                                ((3, 2, 6), ("min-slaves-to-write", "min-slaves-max-lag"))])
def test_replica_config_names(version: tuple[int, int, int], names: tuple[str, str]) -> None:
    assert replica_config_names(version) == names


@pytest.mark.parametrize(("max_pause", "interval"), [(900, 300.0), (30, 10.0), (2, 1.0)])
def test_the_pause_is_renewed_three_times_per_pause(max_pause: int, interval: float) -> None:
    assert renew_interval(max_pause) == interval


def _plan(**quiesce: Any) -> Any:
    return validate_plan({"migration_id": "orders-2024", "source": {"kind": "host"}, "staging": {"bucket": "bkt"},
                          "target": {"replication_group_id": "app-cache"}, "quiesce": quiesce,
                          "approval": {"timeout_seconds": 3600}})


def _state(mode: Any, expires: float | None = None, saved: dict[str, str] | None = None) -> QuiesceState:
    return QuiesceState(mode=mode, paused_at=1_764_686_100.0, pause_expires_at=expires,
                        server=ServerInfo("redis", (7, 0, 15)), saved_config=saved or {})


def test_utc() -> None:
    assert utc(1_764_686_100.0) == "2025-12-02 14:35:00 UTC"


def test_the_approval_shows_both_deadlines_for_a_blocked_window() -> None:
    lines = window_deadlines(_plan(max_pause_seconds=900), _state("client-pause-write", 1_764_687_000.0),
                             now=1_764_686_400.0)
    assert lines[0] == "- **Approval deadline**: 2025-12-02 15:40:00 UTC (in 3600s); no decision by then = rollback"
    assert "blocked (CLIENT PAUSE WRITE) since 2025-12-02 14:35:00 UTC, renewed while the run lives" in lines[1]
    assert "the pause ends 900s later" in lines[1] and "fenced" in lines[1]


def test_the_approval_shows_a_refused_window_lasts_until_cutover_or_rollback() -> None:
    lines = window_deadlines(_plan(), _state("refuse-writes"), now=1_764_686_400.0)
    assert "refused with NOREPLICAS since 2025-12-02 14:35:00 UTC, until the cutover" in lines[1]
    assert "or the rollback" in lines[1]
    assert window_deadlines(_plan(), None, now=0.0)[0].startswith("- **Approval deadline**")


@pytest.mark.parametrize(("state", "cause"), [
    (_state("client-pause-write", expires=1000.0), "the write pause expired at 1970-01-01 00:16:40 UTC?"),
    (_state("client-pause-write", expires=5000.0), "was the pause lifted from outside (CLIENT UNPAUSE)?"),
    (_state("refuse-writes"), "was min-replicas-to-write changed from outside"),
])
def test_the_recheck_says_how_many_writes_and_the_likely_cause(state: QuiesceState, cause: str) -> None:
    msg = moved_message(3, "rdb_changes_since_last_save=3", state, now=2000.0)
    assert msg.startswith("the source took 3 write(s) after the snapshot (")
    assert cause in msg and msg.endswith("— nothing switched, rolled back")


def test_lift_fence_hint_names_the_original_values() -> None:
    state = _state("refuse-writes", saved={"min-slaves-to-write": "0", "min-slaves-max-lag": "10"})
    assert lift_fence_hint(state) == "CONFIG SET min-slaves-to-write 0; CONFIG SET min-slaves-max-lag 10"


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


@pytest.mark.parametrize(("version", "during", "severity", "text"), [
    ((7, 0, 15), "block", "info", "blocked (CLIENT PAUSE WRITE)"),
    ((3, 2, 6), "block", "warn", "has no CLIENT PAUSE WRITE (Redis >= 6.2): writes will be refused with NOREPLICAS "
                                 "(min-slaves-to-write)"),
    ((6, 0, 9), "block", "warn", "(min-replicas-to-write)"),
    ((7, 0, 15), "refuse", "info", "refused at once with NOREPLICAS (min-replicas-to-write)"),
])
def test_preflight_says_what_the_app_meets_during_the_window(version: tuple[int, int, int], during: str,
                                                             severity: str, text: str) -> None:
    from elasticache_migrate.preflight.window_checks import window_mode_findings

    (f,) = window_mode_findings(_plan(during_window=during), ServerInfo("redis", version))
    assert f.severity == severity and text in f.seen


def test_preflight_warns_about_scripts_only_where_the_refusal_cannot_stop_them() -> None:
    from elasticache_migrate.preflight.window_checks import script_findings

    stats = {"cmdstat_evalsha": {"calls": 12, "usec": 30}, "cmdstat_set": {"calls": 900}}
    (f,) = script_findings(ServerInfo("redis", (3, 2, 6)), stats)
    assert f.severity == "warn" and "evalsha 12 calls" in f.seen and "stop the clients that run scripts" in f.todo
    assert script_findings(ServerInfo("redis", (7, 0, 15)), stats) == []
    assert script_findings(ServerInfo("redis", (6, 0, 9)), {"cmdstat_set": {"calls": 1}}) == []
