"""Preflight checks of how the window stops writes and how the fence at cutover will refuse them.

The fence (every version) and the ``refuse`` window (``quiesce.during_window: refuse``, and every window below
Redis 6.2) both CONFIG SET ``min-replicas-to-write`` (``min-slaves-to-write`` before 5.0): a source whose CONFIG
is renamed, disabled or not granted to the plan's user would be migrated without a fence, so that blocks. The
check sets the parameter to the value it already has: it proves the permission and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.quiesce import pause_mode, replica_config_names
from elasticache_migrate.state import ServerInfo

__all__ = ["script_findings", "window_findings", "window_mode_findings"]

_SCRIPT_COMMANDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall")


def window_mode_findings(plan: MigrationPlan, server: ServerInfo) -> list[Finding]:
    """What the app's writes will meet during the window on this server (pure)."""
    sentinel = bool(plan.source.redis.sentinel_master)
    mode = pause_mode(server.version, plan.quiesce.during_window, sentinel=sentinel)
    if mode == "client-pause-write":
        return [Finding("quiesce", "info", f"writes will be blocked (CLIENT PAUSE WRITE) during the window, the pause "
                        f"renewed while the run lives (it ends {plan.quiesce.max_pause_seconds}s after a dead run)")]
    setting = replica_config_names(server.version)[0]
    if plan.quiesce.during_window == "block" and sentinel and server.version >= (6, 2, 0):
        return [Finding("quiesce", "info", f"a Sentinel-managed master: writes will be refused with NOREPLICAS "
                        f"({setting}) during the window, not blocked: CLIENT PAUSE WRITE would hold the Sentinels' "
                        "hello messages, so they would see the master down and fail it over")]
    if plan.quiesce.during_window == "block":
        return [Finding("quiesce", "warn", f"{server} has no CLIENT PAUSE WRITE (Redis >= 6.2): writes will be "
                        f"refused with NOREPLICAS ({setting}) during the window instead of blocked; apps see errors "
                        "at once instead of waiting",
                        "put the app in maintenance mode (or show NOREPLICAS as maintenance); set "
                        "quiesce.during_window: refuse to make this the plan's choice")]
    return [Finding("quiesce", "info", f"writes will be refused at once with NOREPLICAS ({setting}) during the "
                    "window (quiesce.during_window: refuse)")]


def script_findings(server: ServerInfo, commandstats: Mapping[str, Any]) -> list[Finding]:
    """Before Redis 6.2 the refusal does not stop Lua scripts' writes (measured on 3.2, 5.0, 6.0): warn when the
    app runs scripts (pure; ``commandstats`` is INFO commandstats as redis-py parses it)."""
    if server.version >= (6, 2, 0):
        return []
    calls = {name: int(stats.get("calls", 0)) for key, stats in commandstats.items()
             if (name := key.removeprefix("cmdstat_")) in _SCRIPT_COMMANDS and isinstance(stats, Mapping)}
    used = {k: v for k, v in calls.items() if v}
    if not used:
        return []
    counts = ", ".join(f"{k} {v}" for k, v in sorted(used.items()))
    return [Finding("fence", "warn", f"the app runs Lua scripts ({counts} calls since the start): on {server} "
                    "min-slaves/min-replicas-to-write does not refuse their writes, neither during the window nor "
                    "at the fence; a script write after the snapshot rolls the run back, and one on the fenced old "
                    "source after the cutover would be lost",
                    "stop the clients that run scripts before the window (maintenance mode, quiesce."
                    "require_no_clients), and shut the old source down after the cutover")]


def window_findings(plan: MigrationPlan, r: redis.Redis, server: ServerInfo) -> list[Finding]:
    """The window's mode, scripts the refusal cannot stop, and whether the fence (and refuse mode) can CONFIG SET
    the replica settings."""
    out = window_mode_findings(plan, server)
    try:
        out += script_findings(server, r.info("commandstats"))
    except redis.ResponseError:  # INFO not granted: the other checks say so
        pass
    name = replica_config_names(server.version)[0]
    remedy = ("grant CONFIG to the plan's user (ACL SETUSER <user> +config|get +config|set) and do not rename or "
              "disable CONFIG: the fence at cutover must make the old source refuse every write")
    current = config_get(r, name)
    if current is None:
        return [*out, Finding("fence", "block", f"CONFIG GET {name} is unavailable on the source (CONFIG renamed, "
                              "disabled or not granted): the old source could not be fenced at cutover", remedy)]
    try:
        r.config_set(name, current)  # the value it has: proves the permission, changes nothing
    except redis.ResponseError as exc:  # NOPERM, a renamed CONFIG SET, a protected config
        return [*out, Finding("fence", "block", f"CONFIG SET {name} is refused on the source ({exc}): the old "
                              "source could not be fenced at cutover", remedy)]
    return [*out, Finding("fence", "info", f"the old source can be fenced at cutover (CONFIG SET {name} allowed; "
                          f"now {current})")]
