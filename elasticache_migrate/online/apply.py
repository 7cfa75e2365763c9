"""Apply a replication stream's units to a target Redis: pipelined batches on one connection of its own.

The applier owns one connection (same address, TLS and credentials as the given redis-py client; RESP2, raw
bytes), so ``SELECT`` never leaks into a shared pool. A batch is sent in one write and its replies read back in
order; an atomic unit is sent as ``MULTI … EXEC``. :attr:`Applier.progress` says how far the target is:
``applied_offset`` is the offset after the last unit whose replies all came back clean.

Any error reply, or the connection failing mid-batch, stops the applier with :class:`CatchUpError`: the master
ran these commands successfully, so an error means the target differs (or is unreachable) and a blind retry
could run an INCR twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from elasticache_migrate.errors import CatchUpError
from elasticache_migrate.online.stream import EXPIRED_DEL_SCRIPT, EXPIRY_SLACK_MS, STEP, Op, Unit
from elasticache_migrate.source.connection import redis_errors

__all__ = ["Progress", "Applier", "now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Progress:
    """How far the target is behind the stream."""

    applied_offset: int      # offset after the last fully applied unit
    received_offset: int     # offset after the newest unit handed to the applier
    lag_bytes: int           # received_offset - applied_offset
    lag_ms: int              # now - receipt time of the newest received unit, 0 when caught up
    units_applied: int
    expiry_dels_skipped: int  # conditional expiry DELs that found the key refreshed on the target


class Applier:
    """Applies units to ``target`` from ``start_offset`` on; ``apply(units)`` in batches of ``batch_size``."""

    def __init__(self, target: redis.Redis, start_offset: int, *, batch_size: int = 500,
                 clock: Callable[[], int] = now_ms) -> None:
        pool = target.connection_pool
        kwargs: dict[str, Any] = {**pool.connection_kwargs, "decode_responses": False, "protocol": 2}
        self._conn: Any = pool.connection_class(**kwargs)
        self._db: int | None = None
        self._clock = clock
        self.batch_size = batch_size
        self._applied = start_offset
        self._received = start_offset
        self._received_ms = 0
        self._units = 0
        self._skipped = 0

    @property
    def progress(self) -> Progress:
        lag = self._received - self._applied
        return Progress(self._applied, self._received, lag,
                        max(0, self._clock() - self._received_ms) if lag else 0, self._units, self._skipped)

    def close(self) -> None:
        self._conn.disconnect()

    def apply(self, stream: Iterable[Unit]) -> Progress:
        """Apply every unit of ``stream``, in batches; the progress when it is exhausted."""
        batch: list[Unit] = []
        for unit in stream:
            self._received, self._received_ms = unit.end_offset, unit.received_ms
            batch.append(unit)
            if len(batch) >= self.batch_size:
                self.apply_batch(batch)
                batch = []
        if batch:
            self.apply_batch(batch)
        return self.progress

    def apply_batch(self, batch: list[Unit]) -> None:
        """Send ``batch`` in one pipeline; advance ``applied_offset`` over the units that came back clean."""
        if batch:
            self._received = max(self._received, batch[-1].end_offset)
            self._received_ms = max(self._received_ms, batch[-1].received_ms)
        cmds: list[tuple[bytes, ...]] = []
        shape: list[tuple[Unit, int, list[int]]] = []   # unit, replies it owns, indexes of expiry DEL replies
        for unit in batch:
            first = len(cmds)
            dels: list[int] = []
            if unit.atomic:
                cmds.append((b"MULTI",))
            for op in unit.ops:
                if op.db != self._db:
                    cmds.append((b"SELECT", str(op.db).encode()))
                    self._db = op.db
                if op.expiry_del:
                    dels.append(len(cmds) - first - (1 if unit.atomic else 0))
                cmds.append(self._command(op))
            if unit.atomic:
                cmds.append((b"EXEC",))
            shape.append((unit, len(cmds) - first, dels))
        with redis_errors(STEP, CatchUpError, lambda: f"apply to the target after offset {self._applied}"):
            if cmds:   # EVAL with the script's text (not EVALSHA): nothing to load, survives a SCRIPT FLUSH
                self._conn.send_packed_command(self._conn.pack_commands(cmds))
            replies = [self._read() for _ in cmds]
        at = 0
        for unit, n, dels in shape:
            mine, at = replies[at:at + n], at + n
            if unit.atomic and mine:
                result = mine[-1]
                errors = [r for r in mine if isinstance(r, redis.ResponseError)]
                if isinstance(result, list):
                    errors += [r for r in result if isinstance(r, redis.ResponseError)]
                    done = result
                else:
                    done = []
            else:
                errors = [r for r in mine if isinstance(r, redis.ResponseError)]
                done = mine
            if errors:
                self._db = None
                raise CatchUpError(f"the target refused a command of the unit ending at offset {unit.end_offset} "
                                   f"(applied up to {self._applied}): {errors[0]}", step=STEP, retryable=False)
            self._skipped += sum(1 for i in dels if i < len(done) and done[i] == -1)
            self._applied = unit.end_offset
            self._units += 1

    def _command(self, op: Op) -> tuple[bytes, ...]:
        if op.expiry_del:
            return (b"EVAL", EXPIRED_DEL_SCRIPT.encode(), b"1", op.args[1], str(EXPIRY_SLACK_MS).encode())
        return op.args

    def _read(self) -> Any:
        try:
            return self._conn.read_response()
        except redis.ResponseError as exc:   # an error reply: keep reading the rest of the batch
            return exc
