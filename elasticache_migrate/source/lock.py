"""The window lock: one migration window at a time per source, held by the run's own process.

A run holds the lock by keeping one dedicated connection to the source named
``elasticache-migrate:lock:<migration_id>:<run>`` (CLIENT SETNAME). Nothing is written into the user's data: the
lock is the connection itself, so it holds while the run is paused for approval (however long) and dies with the
process (the server drops the connection). Among the connections with such a name, the **lowest client id
wins**: a connection newer than the holder sees an older one and gives up. Two runs starting at the same moment
are decided the same way on both sides; each contender looks twice, a moment apart, so a holder whose name landed
just after the newcomer's first look is still seen.

A keep-alive thread PINGs the connection (a server with ``timeout`` set drops idle clients) and looks again: after
a dropped connection, redis-py reconnects with the same name and a new, higher id, so the run keeps the window
only if nobody took it meanwhile. A lost lock is never taken back; the flow calls :meth:`WindowLock.check` right
before it switches the app's config and stops there.

Pure decisions (:func:`lock_name`, :func:`parse_holder`, :func:`blocking_holder`) beside the I/O
(:class:`WindowLock`).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from elasticache_migrate.errors import SourceError, WindowLocked
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, source_client

__all__ = ["LOCK_PREFIX", "LockHolder", "lock_name", "parse_holder", "lock_holders", "blocking_holder",
           "locked_error", "WindowLock"]

LOCK_PREFIX = "elasticache-migrate:lock:"
SETTLE_SECONDS = 0.5  # between a contender's two looks (see the module docstring)


@dataclass(frozen=True)
class LockHolder:
    """A connection holding (or contending for) the window lock of a source, as CLIENT LIST shows it."""

    client_id: int
    migration_id: str
    run: str            # the flow run id, or ``pid<N>-<hex>`` outside a flow run
    addr: str
    age_seconds: int

    def describe(self) -> str:
        """One line naming the holder for an operator."""
        return (f"migration {self.migration_id}, run {self.run} (client id {self.client_id}, addr {self.addr}, "
                f"connected {self.age_seconds}s)")


def lock_name(migration_id: str, run: str) -> str:
    """The CLIENT SETNAME of the lock connection (no spaces: Redis refuses them in names)."""
    return f"{LOCK_PREFIX}{migration_id}:{run}"


def parse_holder(client: Mapping[str, Any]) -> LockHolder | None:
    """The lock holder a CLIENT LIST entry is, or None for any other client."""
    name = str(client.get("name") or "")
    if not name.startswith(LOCK_PREFIX):
        return None
    migration_id, sep, run = name[len(LOCK_PREFIX):].rpartition(":")
    if not sep or not migration_id or not run:
        return None
    try:
        client_id = int(client.get("id", ""))
    except ValueError:
        return None
    try:
        age = int(client.get("age", 0))
    except ValueError:
        age = 0
    return LockHolder(client_id, migration_id, run, str(client.get("addr") or "?"), age)


def lock_holders(clients: Sequence[Mapping[str, Any]]) -> list[LockHolder]:
    """Every lock connection in a CLIENT LIST, oldest (lowest id) first."""
    return sorted((h for c in clients if (h := parse_holder(c)) is not None), key=lambda h: h.client_id)


def blocking_holder(holders: Sequence[LockHolder], mine: LockHolder) -> LockHolder | None:
    """The holder that keeps ``mine`` from the window: the oldest other lock connection older than ``mine``.

    A connection of the same run (the same name) is never in the way: it is this run's own, earlier one.
    """
    older = [h for h in holders if h.client_id < mine.client_id and h.run != mine.run]
    return min(older, key=lambda h: h.client_id) if older else None


def locked_error(holder: LockHolder, migration_id: str, step: str = "window-lock") -> WindowLocked:
    """The refusal naming who holds the source's window."""
    return WindowLocked(
        f"another migration window holds this source: {holder.describe()}; migration {migration_id} changed "
        "nothing",
        remedy=f"wait for run {holder.run} to finish, or cancel it (Prefect UI/API); if its process is gone and the "
        f"connection lingers, CLIENT KILL ID {holder.client_id} on the source",
        step=step)


def _default_run() -> str:
    return f"pid{os.getpid()}-{uuid.uuid4().hex[:8]}"


class WindowLock:
    """The window lock of one run on the plan's source (see the module docstring).

    Args:
        plan: the migration plan (its source and migration id).
        run: this run's id (the flow run id); a pid-based one when None.
        keepalive_seconds: how often the keep-alive thread PINGs and looks again.
        client: the connection to use (tests); by default a dedicated single connection to the source.
    """

    def __init__(self, plan: MigrationPlan, run: str | None = None, *, keepalive_seconds: float = 5.0,
                 client: redis.Redis | None = None, log: Log = logger) -> None:
        self.migration_id = plan.migration_id
        self.run = run or _default_run()
        self.name = lock_name(plan.migration_id, self.run)
        self.keepalive_seconds = keepalive_seconds
        self._plan = plan
        self._client = client
        self._log = log
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost_to: LockHolder | None = None
        self.held = False

    def acquire(self) -> WindowLock:
        """Take the source's window, or refuse.

        Raises:
            WindowLocked: another run holds it (named in the message); nothing was changed.
            SourceError: the source cannot be reached, or refuses CLIENT SETNAME / CLIENT LIST.
        """
        if self._client is None:
            self._client = source_client(self._plan, single_connection=True, name=self.name, timeout=15)
        try:
            for look in range(2):
                blocker = self._look()
                if blocker is not None:
                    raise locked_error(blocker, self.migration_id)
                if look == 0:
                    time.sleep(SETTLE_SECONDS)
        except BaseException:
            self._close()
            raise
        self.held = True
        self._thread = threading.Thread(target=self._keep_alive, name=f"window-lock-{self.migration_id}",
                                        daemon=True)
        self._thread.start()
        self._log.info("window lock on the source taken: %s", self.name)
        return self

    def check(self) -> None:
        """Prove the lock is still this run's, now (right before the switch).

        Raises:
            WindowLocked: the connection was dropped and another run took the window meanwhile.
            SourceError: the source cannot be reached to tell.
        """
        with self._mutex:
            if self.lost_to is None and self.held:
                blocker = self._look()
                if blocker is not None:
                    self._lose(blocker)
        if self.lost_to is not None:
            err = locked_error(self.lost_to, self.migration_id, step="switch-config")
            err.message = (f"this run lost the source's window lock while its connection was down: "
                           f"{self.lost_to.describe()} holds it now; nothing is switched")
            raise err
        if not self.held:
            raise WindowLocked("this run does not hold the source's window lock", step="switch-config")

    def release(self) -> None:
        """Let go of the window (closes the lock connection); safe to call more than once."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.keepalive_seconds + 20)
        with self._mutex:
            if self.held:
                self._log.info("window lock on the source released: %s", self.name)
            self.held = False
            self._close()

    def __enter__(self) -> WindowLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- I/O -------------------------------------------------------------------------------------------------

    def _look(self) -> LockHolder | None:
        """One CLIENT LIST: the holder in this run's way, if any (a reconnect re-names the connection first)."""
        assert self._client is not None
        with redis_errors("window-lock", SourceError, "source"):
            self._client.ping()  # (re)connects, with CLIENT SETNAME, when the connection was dropped
            holders = lock_holders(self._client.client_list())
        mine = [h for h in holders if h.run == self.run]
        if not mine:  # our own name must be there: CLIENT SETNAME refused or renamed
            raise SourceError(f"the window lock connection's name {self.name!r} is not in CLIENT LIST",
                              remedy="the source must allow CLIENT SETNAME and CLIENT LIST for the plan's user",
                              step="window-lock", retryable=False)
        return blocking_holder(holders, max(mine, key=lambda h: h.client_id))

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.keepalive_seconds):
            with self._mutex:
                if not self.held or self.lost_to is not None:
                    return
                try:
                    blocker = self._look()
                except SourceError as exc:  # the source is away: try again next time (reconnecting)
                    self._log.warning("window lock keep-alive: %s", exc.message)
                    continue
                if blocker is not None:
                    self._lose(blocker)
                    return

    def _lose(self, blocker: LockHolder) -> None:
        self.lost_to = blocker
        self.held = False
        self._log.error("window lock LOST: %s holds the source now; this run will not switch the config",
                        blocker.describe())
        self._close()

    def _close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except (redis.RedisError, OSError):  # closing a dead connection: nothing to release
                pass
