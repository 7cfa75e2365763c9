"""The fence at cutover: the old source refuses every write, on every version, before the app's config moves.

Right before switch-config, in this order (checked on Redis 3.2, 6.2 and 7.0):

1. **Refuse** — ``min-replicas-to-write`` (``min-slaves-*`` before 5.0) above any replica count: every write
   fails with ``NOREPLICAS``, whatever the client's timeouts; it never expires. The values replaced are
   journaled first. A write still held by ``CLIENT PAUSE WRITE`` is re-checked by the server when the pause
   lifts, so it fails with ``NOREPLICAS`` too instead of landing (Redis 6.2/7.0: the refusal is checked
   before the pause).
2. **Re-check** — a Sentinel set's master is still the node quiesce paused
   (:func:`~elasticache_migrate.source.sentinel_set.check_master`: a failover rolls back), and the source took no
   write since the snapshot (the proof verify uses:
   ``rdb_changes_since_last_save``, ``rdb_saves``, LASTSAVE). With the refusal in place nothing can change
   the answer any more. If it did take writes (an expired or lifted pause, config changed from outside) the
   fence raises and the flow rolls back: nothing is switched.
3. **Close** the application clients' connections (``CLIENT KILL ID``; never this tool's own
   ``elasticache-migrate:*`` connections, replicas, Sentinels, monitors or ``quiesce.allowed_clients``), so
   pools reconnect and read the new config. A client killed while its write was held re-sends it (redis-py
   retries) and gets ``NOREPLICAS``: its command died with the connection.
4. **Unpause** (window in ``block`` mode): the writes still held fail with ``NOREPLICAS`` at once.

The fence stays after a verified cutover (:func:`~elasticache_migrate.source.quiesce.finish` says how to lift
it); a rollback lifts it (:func:`~elasticache_migrate.source.quiesce.unpause`: original values back).

Known gap before Redis 6.2 (measured on 3.2.6, 5.0.10, 6.0.9): the refusal is not checked for writes made by Lua
scripts (EVAL), and before 6.0 not for a MULTI whose commands were queued before it. The re-check still sees
such writes before the switch (the run rolls back), but a stale client could write to the fenced old source
through EVAL after the cutover.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis

from elasticache_migrate.errors import SourceError, SourceMoved
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors
from elasticache_migrate.source.quiesce import (
    blocking_clients,
    quiesced_client,
    refuse_writes,
    replica_config_names,
    utc,
)
from elasticache_migrate.source.sentinel_set import check_master
from elasticache_migrate.state import QuiesceState, Snapshot
from elasticache_migrate.verify.run import source_verdict, writes_since_snapshot

__all__ = ["Fenced", "fence", "moved_message"]


@dataclass(frozen=True)
class Fenced:
    """What the fence did: the source refuses every write since ``state.fenced_at``."""

    state: QuiesceState
    proof: str              # the source's counters that show no write since the snapshot
    clients_closed: int
    unpaused: bool


def moved_message(writes: int, proof: str, state: QuiesceState, now: float) -> str:
    """Why the cutover stops: how many writes the source took after the snapshot, and the likely cause."""
    if state.mode == "client-pause-write" and state.pause_expires_at is not None and state.pause_expires_at <= now:
        cause = f"the write pause expired at {utc(state.pause_expires_at)}?"
    elif state.mode == "client-pause-write":
        cause = "was the pause lifted from outside (CLIENT UNPAUSE)?"
    else:
        setting = replica_config_names(state.server.version)[0]
        script = ", or a script (EVAL) wrote (Redis < 6.2 lets them)" if state.server.version < (6, 2, 0) else ""
        cause = f"was {setting} changed from outside{script}?"
    return (f"the source took {writes} write(s) after the snapshot ({cause}; {proof}) — nothing switched, "
            "rolled back")


def fence(plan: MigrationPlan, snapshot: Snapshot, state: QuiesceState | None = None, r: redis.Redis | None = None,
          log: Log = logger) -> Fenced:
    """Fence the source before the switch: refuse writes, re-check, close app connections, unpause.

    The pause's renewal must be stopped first. Journaled (``QuiesceState.saved_config`` before the change,
    ``fenced_at`` after).

    Raises:
        SourceMoved: the source took writes after the snapshot; the caller rolls back (nothing switched).
        MasterChanged: a Sentinel set failed over (or its master restarted) during the window: the same.
        QuiesceError: CONFIG is renamed, disabled or not granted (preflight checks it).
        SourceError: the source could not be reached.
    """
    journal = Journal(plan.workdir)
    state = journal.read().quiesce or state
    if state is None:
        raise SourceError("the journal holds no quiesce state: the source was never quiesced by this run",
                          remedy="run the whole migration again with the same id", step="fence-source")
    if r is None:
        r = quiesced_client(plan, state)  # the node quiesce paused, not whichever is master now
    with redis_errors("fence-source", SourceError, "source"):
        state = refuse_writes(r, state, journal, log)
        state = replace(state, fenced_at=time.time())
        journal.update(quiesce=state)
        log.info("source fenced: every write now gets NOREPLICAS")
    check_master(plan, "fence-source", log)  # a Sentinel set: still the same master, or roll back
    with redis_errors("fence-source", SourceError, "source"):
        info: Mapping[str, Any] = r.info("persistence")
        proof, moved = source_verdict(info, snapshot, refusing=True)
        if moved is not None:
            raise SourceMoved(moved_message(writes_since_snapshot(info, snapshot), proof, state, time.time()),
                              step="fence-source")
        log.info("source unchanged since the snapshot: %s", proof)
        closed = _close_app_clients(plan, r, log)
        unpaused = False
        if state.mode == "client-pause-write":
            r.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
            unpaused = True
            log.info("source unpaused: writes held by the pause now fail with NOREPLICAS")
    return Fenced(state=state, proof=proof, clients_closed=closed, unpaused=unpaused)


def _close_app_clients(plan: MigrationPlan, r: redis.Redis, log: Log) -> int:
    """CLIENT KILL ID each application client (as quiesce tells them apart); returns how many were closed."""
    closed = 0
    for c in blocking_clients(r.client_list(), plan.migration_id, plan.quiesce.allowed_clients):
        try:
            closed += int(r.execute_command("CLIENT", "KILL", "ID", str(c["id"])))  # type: ignore[no-untyped-call]
        except redis.ResponseError:  # "No such client": it left meanwhile
            continue
    if closed:
        log.info("closed %d application connection(s) to the old source: their pools reconnect and read the new "
                 "config", closed)
    return closed
