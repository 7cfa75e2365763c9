"""Quiesce: maintenance hook on, wait for application clients to leave, stop writes. And its inverse.

Two ways to stop writes for the window (``quiesce.during_window``):

- ``block``: ``CLIENT PAUSE <ms> WRITE`` (Redis >= 6.2): writes wait, reads, INFO, BGSAVE and replication go on;
  expiry and eviction stop. The pause is renewed by :class:`PauseRenewal` while the run lives (each renewal
  journaled), so it only expires ``max_pause_seconds`` after the run died.
- ``refuse``: ``min-replicas-to-write`` (``min-slaves-*`` before 5.0) set above any possible replica count
  makes every write fail at once with ``NOREPLICAS`` while reads, INFO and BGSAVE work; it does not expire.
  Older servers only have ``CLIENT PAUSE ... ALL``, which would also block this tool's own INFO/BGSAVE, so
  below 6.2 this is the only way. The values it replaces are journaled *before* they are changed and put back
  by :func:`unpause`.

At cutover the fence (:mod:`elasticache_migrate.source.fence`) makes every version refuse writes the same way.
The operations journal what they changed as soon as it is changed, so a crashed run's re-run (or its
rollback) undoes exactly that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import redis

from elasticache_migrate.errors import QuiesceError, SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.connection import client_name, redis_errors, server_info, source_client
from elasticache_migrate.source.sentinel_set import (
    failover_seen,
    node_client,
    node_ref,
    release_set,
    restore_config,
    set_nodes,
)
from elasticache_migrate.state import NodeRef, PauseMode, QuiesceState, ServerInfo, SetHold

__all__ = [
    "REFUSE_WRITES_REPLICAS",
    "ClientInfo",
    "PauseRenewal",
    "pause_mode",
    "replica_config_names",
    "refuse_writes_settings",
    "refuse_writes",
    "renew_interval",
    "window_deadlines",
    "utc",
    "describe_client",
    "blocking_clients",
    "call_maintenance_hook",
    "pause",
    "unpause",
    "quiesced_client",
    "refusing",
    "lift_fence_hint",
    "finish",
]

REFUSE_WRITES_REPLICAS = 1_000_000  # no source has this many replicas: every write gets NOREPLICAS

ClientInfo = Mapping[str, Any]
"""One client as CLIENT LIST reports it (``addr``, ``name``, ``flags``, ``cmd``, …)."""


def pause_mode(version: tuple[int, int, int], during_window: Literal["block", "refuse"] = "block", *,
               sentinel: bool = False) -> PauseMode:
    """How to stop writes on a server of this version (see the module docstring): block only from 6.2 on, and
    never on a Sentinel-managed master (``sentinel``): CLIENT PAUSE WRITE also holds the Sentinels' hello
    PUBLISH, their PINGs queue behind it on the same link, and after ``down-after-milliseconds`` they mark the
    master down and fail it over (measured on 7.0.15: s_down + o_down 5 s into the pause, down-after 1 s)."""
    if during_window == "block" and version >= (6, 2, 0) and not sentinel:
        return "client-pause-write"
    return "refuse-writes"


def _replica_prefix(version: tuple[int, int, int]) -> str:
    return "min-replicas" if version >= (5, 0, 0) else "min-slaves"


def replica_config_names(version: tuple[int, int, int]) -> tuple[str, str]:
    """The two settings the refusal changes: ``(min-replicas-to-write, min-replicas-max-lag)`` or min-slaves-*."""
    prefix = _replica_prefix(version)
    return f"{prefix}-to-write", f"{prefix}-max-lag"


def renew_interval(max_pause_seconds: int) -> float:
    """How often the pause is renewed: three renewals fit in one pause, so two can fail before it expires."""
    return max(1.0, max_pause_seconds / 3)


def utc(ts: float) -> str:
    """'2026-12-02 14:55:00 UTC' for an epoch timestamp."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def window_deadlines(plan: MigrationPlan, state: QuiesceState | None, now: float) -> list[str]:
    """The two deadlines of the approval (markdown list items, for the form and Slack): when the approval times
    out, and how long the source's writes stay stopped."""
    lines = []
    if plan.approval.enabled:
        lines.append(f"- **Approval deadline**: {utc(now + plan.approval.timeout_seconds)} "
                     f"(in {plan.approval.timeout_seconds}s); no decision by then = rollback")
    if state is None:
        return lines
    if state.mode == "client-pause-write":
        lines.append(f"- **Writes**: blocked (CLIENT PAUSE WRITE) since {utc(state.paused_at)}, renewed while "
                     f"the run lives (should it die, the pause ends {plan.quiesce.max_pause_seconds}s later); "
                     "at cutover the old source is fenced (refuses every write)")
    else:
        lines.append(f"- **Writes**: refused with NOREPLICAS since {utc(state.paused_at)}, until the cutover "
                     "(then the old source stays fenced) or the rollback")
    return lines


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
    """Stop writes to the source: maintenance hook on, wait for app clients to leave, block or refuse writes
    (``quiesce.during_window``); the state is journaled.

    Returns:
        What was changed, for :func:`unpause`.

    Raises:
        QuiesceError: clients did not leave in time (named), or writes could not be stopped.
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
        state = _stop_writes(plan, r, server, hook, earlier, journal, log)
    journal.update(quiesce=state)
    return state


def _stop_writes(plan: MigrationPlan, r: redis.Redis, server: ServerInfo, hook: bool, earlier: QuiesceState | None,
                 journal: Journal, log: Log) -> QuiesceState:
    """Block or refuse the source's writes the way the plan and its version allow; the state says how, and what
    to restore."""
    sentinel = bool(plan.source.redis.sentinel_master)
    mode = pause_mode(server.version, plan.quiesce.during_window, sentinel=sentinel)
    node = node_ref(r)  # every later step talks to this node, whichever node is master by then
    now = time.time()
    # a re-run after a crash: keep the values from before the first run (the source may still refuse writes)
    saved = dict(earlier.saved_config) if earlier else {}
    if mode == "client-pause-write":
        _client_pause_write(r, plan.quiesce.max_pause_seconds)
        log.info("writes blocked (CLIENT PAUSE WRITE) for %ss, renewed while the run lives",
                 plan.quiesce.max_pause_seconds)
        return QuiesceState(mode=mode, paused_at=now, pause_expires_at=now + plan.quiesce.max_pause_seconds,
                            server=server, hook_called=hook, saved_config=saved, node=node)
    if plan.quiesce.during_window == "block" and sentinel and server.version >= (6, 2, 0):
        log.warning("a Sentinel-managed master: writes are refused (NOREPLICAS) instead of blocked during the "
                    "window (CLIENT PAUSE WRITE would make its Sentinels see it down and fail it over)")
    elif plan.quiesce.during_window == "block":
        log.warning("%s has no CLIENT PAUSE WRITE (Redis >= 6.2): writes are refused (NOREPLICAS) instead of "
                    "blocked during the window", server)
    state = QuiesceState(mode=mode, paused_at=now, pause_expires_at=None, server=server, saved_config=saved,
                         hook_called=hook, node=node)
    state = refuse_writes(r, state, journal, log)
    log.info("writes refused with NOREPLICAS (%s) until the cutover or the rollback; previous values kept: %s",
             replica_config_names(server.version)[0], state.saved_config)
    return state


def refuse_writes(r: redis.Redis, state: QuiesceState, journal: Journal, log: Log = logger) -> QuiesceState:
    """Make the source refuse every write (NOREPLICAS). The values replaced are journaled *before* the change
    (kept from ``state`` when it already holds them); returns the state with them.

    Raises:
        QuiesceError: CONFIG GET of the settings fails (renamed, disabled or not granted).
        redis.RedisError: CONFIG SET failed (the caller maps it).
    """
    saved = dict(state.saved_config) or {n: _config_get(r, n) for n in replica_config_names(state.server.version)}
    state = replace(state, saved_config=saved)
    journal.update(quiesce=state)  # journaled first: a crash in between restores the same values, harmlessly
    for k, v in refuse_writes_settings(state.server.version, saved).items():
        r.config_set(k, v)
    return state


def _client_pause_write(r: redis.Redis, seconds: int) -> None:
    r.execute_command("CLIENT", "PAUSE", str(seconds * 1000), "WRITE")  # type: ignore[no-untyped-call]


def _config_get(r: redis.Redis, name: str) -> str:
    """CONFIG GET one value (a renamed/disabled CONFIG gives a clear error)."""
    value = config_get(r, name)
    if value is None:
        raise QuiesceError(f"CONFIG GET {name} failed on the source: CONFIG is renamed, disabled or not granted",
                           remedy="grant CONFIG (not renamed) to the plan's user: the source must refuse writes "
                           "at cutover (and during the window below Redis 6.2 or with during_window: refuse)",
                           step="quiesce")
    return value


class PauseRenewal:
    """Renews the source's CLIENT PAUSE WRITE every :func:`renew_interval` while the run lives, journaling each
    renewal's end; so the pause never ends before the run does, and expires ``max_pause_seconds`` after the run
    died. A no-op for a window that refuses writes (that does not expire).

    Use ``renewal = PauseRenewal(plan, state).start()`` … ``renewal.stop()`` (stop before anything unpauses,
    fences or rolls back; stop is idempotent and waits for a renewal under way).
    """

    def __init__(self, plan: MigrationPlan, state: QuiesceState, log: Log = logger,
                 interval: float | None = None) -> None:
        self.plan, self.state, self.log = plan, state, log
        self.interval = interval or renew_interval(plan.quiesce.max_pause_seconds)
        self.renewals = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PauseRenewal:
        if self.state.mode == "client-pause-write" and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pause-renewal", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        r: redis.Redis | None = None
        while not self._stop.wait(self.interval):
            try:
                r = r or quiesced_client(self.plan, self.state, timeout=10)
                self.renew(r)
            except (redis.RedisError, OSError, QuiesceError) as exc:  # next try in one interval; two may fail
                self.failures += 1
                r = None
                self.log.warning("could not renew the write pause (%s: %s); retrying in %.0fs; the fence re-checks "
                                 "the source before any switch", type(exc).__name__, exc, self.interval)

    def renew(self, r: redis.Redis) -> None:
        """One renewal: CLIENT PAUSE for max_pause_seconds from now, journaled (unless the run stopped meanwhile)."""
        journal = Journal(self.plan.workdir)
        seconds = self.plan.quiesce.max_pause_seconds
        with Journal.lock:
            current = journal.read().quiesce
            if self._stop.is_set() or current is None or current.fenced_at is not None:
                return  # unpaused, fenced or rolled back meanwhile: never pause again
            _client_pause_write(r, seconds)
            now = time.time()
            journal.update(quiesce=replace(current, pause_expires_at=now + seconds))
        self.renewals += 1
        self.log.info("write pause renewed until %s", utc(now + seconds))


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


def quiesced_client(plan: MigrationPlan, state: QuiesceState, *, timeout: float = 30) -> redis.Redis:
    """A client for the node quiesce paused (``state.node``): never re-resolved through Sentinel, so a failover
    cannot make a step pause, fence or restore another node. Journals of older runs: the plan's source."""
    if state.node is None:
        return source_client(plan, timeout=timeout)
    return node_client(plan, state.node.host, state.node.port, timeout=timeout)


def refusing(version: tuple[int, int, int], current: Mapping[str, str | None]) -> bool:
    """True when a node's ``min-replicas-to-write`` (``min-slaves-*``) is this tool's refusal value."""
    return current.get(replica_config_names(version)[0]) == str(REFUSE_WRITES_REPLICAS)


def unpause(plan: MigrationPlan, state: QuiesceState | None = None, r: redis.Redis | None = None,
            log: Log = logger) -> None:
    """Give the source back to the application: the replaced config values back (refuse mode, fence) on the node
    they were changed on, writes unpaused, maintenance hook off; the journal's entry is cleared. For a Sentinel
    set also every other node found refusing writes with this tool's value, and the replicas' priorities
    (:func:`~elasticache_migrate.source.sentinel_set.release_set`), even when the master does not answer.

    Safe to call more than once, and after a crash (the state is read from the journal, which also holds what a
    fence changed after ``state`` was taken).
    """
    journal = Journal(plan.workdir)
    state = journal.read().quiesce or state
    try:
        if state is None:
            log.info("nothing to unquiesce")
            return
        _give_back(plan, state, r, journal, log)
    finally:
        release_set(plan, log)


def _give_back(plan: MigrationPlan, state: QuiesceState, r: redis.Redis | None, journal: Journal, log: Log) -> None:
    hold = journal.read().sentinel_set
    failover = failover_seen(plan, hold)  # Sentinel may have CONFIG REWRITten our values into the nodes' files
    node = state.node or NodeRef(plan.source.redis.host, plan.source.redis.port, "")
    if r is None:
        r = quiesced_client(plan, state)
    with redis_errors("unquiesce", SourceError, f"source {node.address}"):
        if state.saved_config:  # first: writes held by the pause then land, not fail
            restore_config(r, node, state.saved_config, failover=failover, log=log)
            log.info("source accepts writes again; restored %s on %s", state.saved_config, node.address)
        if state.mode == "client-pause-write":
            r.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
            log.info("source writes unpaused (CLIENT UNPAUSE)")
    if state.saved_config and plan.source.redis.sentinel_master:
        _sweep(plan, state, hold, node, failover, log)
    if state.hook_called:
        call_maintenance_hook(plan, False)
        log.info("maintenance hook switched off")
    journal.update(quiesce=None)


def _sweep(plan: MigrationPlan, state: QuiesceState, hold: SetHold | None, done: NodeRef, failover: bool,
           log: Log) -> None:
    """Every other node of the set that refuses writes with this tool's value gets the saved values back (a run
    of an older version, or a re-run after a failover, may have fenced another node than ``state.node``)."""
    for node in set_nodes(plan, hold):
        if node.address == done.address:
            continue
        try:
            with node_client(plan, node.host, node.port, timeout=5) as c:
                version = ServerInfo.from_info(c.info("server")).version
                if refusing(version, {n: config_get(c, n) for n in replica_config_names(version)}):
                    log.warning("%s refuses writes with this tool's %s: restoring it there too", node.address,
                                replica_config_names(version)[0])
                    restore_config(c, node, state.saved_config, failover=failover, log=log)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not check %s for a left-over write refusal (%s: %s)", node.address,
                        type(exc).__name__, exc)


def lift_fence_hint(state: QuiesceState) -> str:
    """The commands that make the old source take writes again (after a verified cutover the fence stays)."""
    return "; ".join(f"CONFIG SET {k} {v}" for k, v in state.saved_config.items())


def finish(plan: MigrationPlan, state: QuiesceState, r: redis.Redis | None = None, log: Log = logger) -> str:
    """After a verified cutover: maintenance hook off; the old source stays fenced (it refuses every write, on
    every version, without expiry), so a straggler cannot write where nobody reads. Returns what was done, for
    the run's summary (with how to lift the fence)."""
    state = Journal(plan.workdir).read().quiesce or state
    if state.hook_called:
        call_maintenance_hook(plan, False)
    msg = ("old source stays fenced: it refuses every write (NOREPLICAS) for good; shut it down when the app is "
           "settled, or lift the fence with " + (lift_fence_hint(state) or "CONFIG SET min-replicas-to-write 0"))
    Journal(plan.workdir).update(quiesce=None)
    log.info(msg)
    return msg
