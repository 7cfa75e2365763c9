"""Apply a replication stream's units to a target Redis: pipelined batches on one connection of its own.

The applier owns one connection (same address, TLS and credentials as the given redis-py client; RESP2, raw
bytes), so ``SELECT`` never leaks into a shared pool. A batch is sent in one write and its replies read back in
order; an atomic unit is sent as ``MULTI … EXEC``. :attr:`Applier.progress` says how far the target is:
``applied_offset`` is the offset after the last unit whose replies all came back clean.

TTL grace (``ttl_grace_ms``, item 3 of issue 13): a key must not expire on the target while the command that
extends it on the source is still queued (a TTL hole: the lagging target expires the key at its old time, the
refresh then finds nothing and the key is lost). With a grace, every absolute TTL the target is given
(``PEXPIREAT``, ``SET … PXAT``) lies ``ttl_grace_ms`` later than the source's: the target then never expires a key
on its own before the source's stream says so — the source's expiry DELs, applied in order, delete it.
:meth:`Applier.finalize_ttls`, once the stream is applied to the cutover's offset, sets the true times back.
The grace should exceed the largest lag the catch-up allows.

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

__all__ = ["Progress", "Applier", "now_ms", "RESTORE_TTL_SCRIPT"]

RESTORE_TTL_SCRIPT = """
local t = redis.call('PTTL', KEYS[1])
if t < 0 or math.abs(t - tonumber(ARGV[1])) > tonumber(ARGV[3]) then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""
"""PEXPIREAT KEYS[1] ARGV[2] (its true expiry) only if its PTTL is still the graced one (ARGV[1], ± ARGV[3] ms)."""


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

    def __init__(self, target: redis.Redis, start_offset: int, *, batch_size: int = 500, ttl_grace_ms: int = 0,
                 clock: Callable[[], int] = now_ms) -> None:
        pool = target.connection_pool
        kwargs: dict[str, Any] = {**pool.connection_kwargs, "decode_responses": False, "protocol": 2}
        self._conn: Any = pool.connection_class(**kwargs)
        self._db: int | None = None
        self._clock = clock
        self.batch_size = batch_size
        self.ttl_grace_ms = ttl_grace_ms
        self._graced: dict[tuple[int, bytes], tuple[int, int]] = {}   # (db, key) -> (true, graced) absolute ms
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
        """Apply every unit of ``stream``, in batches; the progress when it is exhausted.

        A batch is sent once ``batch_size`` units are there or the stream ends: for a live tail, call it with what
        is there now (e.g. ``StreamUnits.feed`` over ``spool.read(applied, until=committed)``), then again.
        """
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
        try:
            with redis_errors(STEP, CatchUpError, lambda: f"apply to the target after offset {self._applied}"):
                if cmds:   # EVAL with the script's text (not EVALSHA): nothing to load, survives a SCRIPT FLUSH
                    self._conn.send_packed_command(self._conn.pack_commands(cmds))
                replies = [self._read() for _ in cmds]
        except CatchUpError as exc:
            self._db = None          # a new connection starts in the client's db
            exc.retryable = False    # part of the batch may have run: never sent twice
            raise
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
        args = op.args
        if op.expiry_del:
            due = str(EXPIRY_SLACK_MS + self.ttl_grace_ms).encode()
            return (b"EVAL", EXPIRED_DEL_SCRIPT.encode(), b"1", args[1], due)
        if not self.ttl_grace_ms or len(args) < 3:
            return args
        name = args[0].upper()
        if name in (b"PEXPIREAT", b"EXPIREAT"):
            at = int(args[2]) * (1000 if name == b"EXPIREAT" else 1)
            return (b"PEXPIREAT", args[1], self._grace(op.db, args[1], at), *args[3:])
        if name == b"SET" and len(args) >= 5:
            up = [a.upper() for a in args]
            for unit, scale in ((b"PXAT", 1), (b"EXAT", 1000)):
                if unit in up[3:-1]:
                    i = up.index(unit, 3)
                    graced = self._grace(op.db, args[1], int(args[i + 1]) * scale)
                    return (*args[:i], b"PXAT", graced, *args[i + 2:])
        return args

    def _grace(self, db: int, key: bytes, at: int) -> bytes:
        self._graced[(db, key)] = (at, at + self.ttl_grace_ms)
        return str(at + self.ttl_grace_ms).encode()

    def finalize_ttls(self) -> int:
        """Give every key whose TTL this applier extended by ``ttl_grace_ms`` its true expiry again, unless the key
        was changed since (gone, persistent, another TTL); how many were set. Call once the stream is applied up to
        the offset the cutover waits for (inside the pause)."""
        items = list(self._graced.items())
        if not items:
            return 0
        now = self._clock()
        cmds: list[tuple[bytes, ...]] = []
        for (db, key), (true_at, graced_at) in items:
            if db != self._db:
                cmds.append((b"SELECT", str(db).encode()))
                self._db = db
            cmds.append((b"EVAL", RESTORE_TTL_SCRIPT.encode(), b"1", key, str(graced_at - now).encode(),
                         str(true_at).encode(), str(EXPIRY_SLACK_MS).encode()))
        with redis_errors(STEP, CatchUpError, "restore the true TTLs on the target"):
            self._conn.send_packed_command(self._conn.pack_commands(cmds))
            replies = [self._read() for _ in cmds]
        errors = [r for r in replies if isinstance(r, redis.ResponseError)]
        if errors:
            raise CatchUpError(f"the target refused restoring a TTL: {errors[0]}", step=STEP, retryable=False)
        self._graced.clear()
        return sum(1 for r in replies if r == 1)

    def _read(self) -> Any:
        try:
            return self._conn.read_response()
        except redis.ResponseError as exc:   # an error reply: keep reading the rest of the batch
            return exc
