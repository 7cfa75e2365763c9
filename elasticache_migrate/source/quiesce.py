"""Quiesce: maintenance hook on, wait for application clients to leave, pause writes. And its inverse.

Writes are paused with ``CLIENT PAUSE <ms> WRITE`` on Redis >= 6.2: reads, INFO, BGSAVE and replication
go on; expiry and eviction stop. Older servers only have ``CLIENT PAUSE ... ALL``, which would also block
this tool's own INFO/BGSAVE, so there we make the master refuse writes instead: ``min-slaves-to-write``
set above any possible replica count makes every write fail with ``NOREPLICAS`` while reads, INFO and
BGSAVE work. The values it replaces are kept in the journal and put back by :func:`unpause`.

The operations (:func:`pause`, :func:`unpause`, :func:`finish`) journal what they changed as soon as it is
changed, so a crashed run's re-run (or its rollback) undoes exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import redis

from elasticache_migrate.errors import QuiesceError, SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.connection import client_name, redis_errors, server_info, source_client
from elasticache_migrate.state import PauseMode, QuiesceState, ServerInfo

__all__ = [
    "REFUSE_WRITES_REPLICAS",
    "ClientInfo",
    "pause_mode",
    "refuse_writes_settings",
    "describe_client",
    "blocking_clients",
    "call_maintenance_hook",
    "pause",
    "unpause",
    "finish",
]

REFUSE_WRITES_REPLICAS = 1_000_000  # no source has this many replicas: every write gets NOREPLICAS

ClientInfo = Mapping[str, Any]
"""One client as CLIENT LIST reports it (``addr``, ``name``, ``flags``, ``cmd``, …)."""


def pause_mode(version: tuple[int, int, int]) -> PauseMode:
    """How to stop writes on a server of this version (see the module docstring)."""
    return "client-pause-write" if version >= (6, 2, 0) else "refuse-writes"


def _replica_prefix(version: tuple[int, int, int]) -> str:
    return "min-replicas" if version >= (5, 0, 0) else "min-slaves"


def refuse_writes_settings(version: tuple[int, int, int], current: Mapping[str, str]) -> dict[str, str]:
    """CONFIG SET values that make a master refuse writes (NOREPLICAS), given its current config."""
    prefix = _replica_prefix(version)
    wanted = {f"{prefix}-to-write": str(REFUSE_WRITES_REPLICAS)}
    if current.get(f"{prefix}-max-lag", "0") == "0":
        wanted[f"{prefix}-max-lag"] = "10"  # with max-lag 0 the check is off
    return wanted


def describe_client(c: ClientInfo) -> str:
    """One line naming a connected client for an operator."""
    parts = [f"addr={c.get('addr')}", f"name={c.get('name') or '-'}"]
    for k in ("lib-name", "cmd", "age", "idle"):
        if c.get(k):
            parts.append(f"{k}={c[k]}")
    return " ".join(parts)


def blocking_clients(clients: Sequence[ClientInfo], migration_id: str, allowed: Sequence[str]) -> list[ClientInfo]:
    """The application clients still connected: not us, replicas, masters, monitors, Sentinels or allowed."""
    ours = client_name(migration_id)
    out = []
    for c in clients:
        name = str(c.get("name") or "")
        flags = str(c.get("flags") or "")
        addr = str(c.get("addr") or "")
        if name.startswith("elasticache-migrate:") or name == ours:
            continue
        if any(f in flags for f in ("S", "M", "O")):  # replica, master link, MONITOR
            continue
        if name.startswith("sentinel-"):
            continue
        if any(name == a or (a and addr.startswith(a)) for a in allowed):
            continue
        out.append(c)
    return out


def call_maintenance_hook(plan: MigrationPlan, on: bool) -> bool:
    """POST the maintenance state to the app's hook; False when no hook is configured.

    Raises:
        QuiesceError: the hook failed three times (1 s, then 3 s apart).
    """
    url = plan.quiesce.maintenance_hook_url
    if not url:
        return False
    token = resolve_secret(plan.quiesce.maintenance_hook_token_secret, purpose="maintenance hook token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"migration_id": plan.migration_id, "maintenance": on}
    last: httpx.HTTPError | None = None
    for delay in (0, 1, 3):
        time.sleep(delay)
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=15)
            r.raise_for_status()
            return True
        except httpx.HTTPError as exc:
            last = exc
    raise QuiesceError(f"maintenance hook {url} failed: {last}",
                       remedy="check quiesce.maintenance_hook_url and that the app answers it (2xx)",
                       step="quiesce")


def pause(plan: MigrationPlan, r: redis.Redis | None = None, log: Log = logger) -> QuiesceState:
    """Stop writes to the source: maintenance hook on, wait for app clients to leave, pause writes; the state is
    journaled.

    Returns:
        What was changed, for :func:`unpause`.

    Raises:
        QuiesceError: clients did not leave in time (named), or writes could not be paused.
    """
    journal = Journal(plan.workdir)
    earlier = journal.read().quiesce
    if r is None:
        r = source_client(plan)
    with redis_errors("quiesce", SourceError, "source"):
        server = server_info(r)
        log.info("source is %s", server)
        hook = call_maintenance_hook(plan, True)
        if hook:
            log.info("maintenance hook switched on")
        if plan.quiesce.require_no_clients:
            _wait_for_clients_to_leave(plan, r, log)
        state = _pause_writes(plan, r, server, hook, earlier, log)
    journal.update(quiesce=state)
    return state


def _pause_writes(plan: MigrationPlan, r: redis.Redis, server: ServerInfo, hook: bool, earlier: QuiesceState | None,
                  log: Log) -> QuiesceState:
    """Pause the source's writes the way its version allows; the state says how, and what to restore."""
    mode = pause_mode(server.version)
    now = time.time()
    if mode == "client-pause-write":
        _client_pause_write(r, plan.quiesce.max_pause_seconds)
        log.info("writes paused (CLIENT PAUSE WRITE) for at most %ss", plan.quiesce.max_pause_seconds)
        return QuiesceState(mode=mode, paused_at=now, pause_expires_at=now + plan.quiesce.max_pause_seconds,
                            server=server, hook_called=hook)
    prefix = _replica_prefix(server.version)
    names = [f"{prefix}-to-write", f"{prefix}-max-lag"]
    if earlier and earlier.mode == "refuse-writes":
        saved = earlier.saved_config  # a re-run: keep the values from before the first run
    else:
        saved = {n: _config_get(r, n) for n in names}
    for k, v in refuse_writes_settings(server.version, saved).items():
        r.config_set(k, v)
    log.info("%s has no CLIENT PAUSE WRITE: writes now refused with NOREPLICAS "
             "(min-slaves-to-write); previous values kept: %s", server, saved)
    return QuiesceState(mode=mode, paused_at=now, pause_expires_at=None, server=server, saved_config=saved,
                        hook_called=hook)


def _client_pause_write(r: redis.Redis, seconds: int) -> None:
    r.execute_command("CLIENT", "PAUSE", str(seconds * 1000), "WRITE")  # type: ignore[no-untyped-call]


def _config_get(r: redis.Redis, name: str) -> str:
    """CONFIG GET one value (a renamed/disabled CONFIG gives a clear error)."""
    value = config_get(r, name)
    if value is None:
        raise QuiesceError(f"CONFIG GET {name} failed on the source: CONFIG is renamed, disabled or not granted",
                           remedy="this server needs CONFIG (not renamed) to pause writes before Redis 6.2",
                           step="quiesce")
    return value


def _wait_for_clients_to_leave(plan: MigrationPlan, r: redis.Redis, log: Log) -> None:
    """Poll CLIENT LIST until no application client is connected, or fail naming them."""
    deadline = time.monotonic() + plan.quiesce.drain_timeout_seconds
    while True:
        left = blocking_clients(r.client_list(), plan.migration_id, plan.quiesce.allowed_clients)
        if not left:
            log.info("no application clients connected")
            return
        if time.monotonic() >= deadline:
            names = "\n  ".join(describe_client(c) for c in left[:20])
            raise QuiesceError(
                f"{len(left)} application client(s) still connected after "
                f"{plan.quiesce.drain_timeout_seconds:.0f}s:\n  {names}",
                remedy="put the app in maintenance mode (stop writers), add monitoring clients to "
                "quiesce.allowed_clients, or set quiesce.require_no_clients: false",
                step="quiesce",
            )
        time.sleep(0.5)


def unpause(plan: MigrationPlan, state: QuiesceState | None = None, r: redis.Redis | None = None,
            log: Log = logger) -> None:
    """Give the source back to the application: writes allowed again, maintenance hook off; the journal's
    entry is cleared.

    Safe to call more than once, and after a crash (the state is read from the journal).
    """
    journal = Journal(plan.workdir)
    state = state or journal.read().quiesce
    if state is None:
        log.info("nothing to unquiesce")
        return
    if r is None:
        r = source_client(plan)
    with redis_errors("unquiesce", SourceError, "source"):
        if state.mode == "client-pause-write":
            r.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
            log.info("source writes unpaused (CLIENT UNPAUSE)")
        else:
            for k, v in state.saved_config.items():
                r.config_set(k, v)
            log.info("source accepts writes again; restored %s", state.saved_config)
    if state.hook_called:
        call_maintenance_hook(plan, False)
        log.info("maintenance hook switched off")
    journal.update(quiesce=None)


def finish(plan: MigrationPlan, state: QuiesceState, r: redis.Redis | None = None, log: Log = logger) -> str:
    """After a verified cutover: maintenance hook off; the old source keeps refusing writes, or is unpaused
    (``cutover.source_after_cutover``). Returns what was done, for the run's summary."""
    if state.hook_called:
        call_maintenance_hook(plan, False)
    if plan.cutover.source_after_cutover == "unpause":
        unpause(plan, state, r, log)
        return "old source unpaused (cutover.source_after_cutover=unpause)"
    if r is None:
        r = source_client(plan)
    with redis_errors("finish", SourceError, "source"):
        if state.mode == "client-pause-write":
            _client_pause_write(r, plan.quiesce.max_pause_seconds)
            msg = (f"old source keeps refusing writes for {plan.quiesce.max_pause_seconds}s more (CLIENT PAUSE "
                   "WRITE), so a straggler cannot write where nobody reads; shut it down when the app is settled")
        else:
            msg = ("old source keeps refusing writes (min-slaves-to-write); restore with CONFIG SET "
                   + " ".join(f"{k} {v}" for k, v in state.saved_config.items()) + " if it is ever needed again")
    Journal(plan.workdir).update(quiesce=None)
    log.info(msg)
    return msg
