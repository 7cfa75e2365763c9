"""A master's replication stream as commands, then as units to apply to an ElastiCache target. Pure: no I/O.

What a replica receives after the RDB is RESP arrays of bulk strings. :class:`CommandParser` cuts byte chunks
(split anywhere) into :class:`Command` values, each with the replication offset *after* it and the time it was
received. :class:`UnitPlanner` turns commands into :class:`Unit` values, the smallest things applied all or not
at all:

- ``SELECT n`` is tracked, never passed on: every operation carries its db and the applier selects as needed.
- ``MULTI … EXEC`` becomes one atomic unit (applied inside MULTI/EXEC on the target, never half).
- Dropped (they mean nothing to the target): ``PING``, ``REPLCONF`` (the link's own traffic), and every
  ``PUBLISH``/``SPUBLISH`` — Sentinel's ``__sentinel__:hello`` announces the *source's* Sentinel set, and an app's
  messages were already delivered to the source's subscribers (replaying them would deliver them twice to any
  subscriber already on the target).
- Refused with :class:`StreamRefused` (the run stops, nothing is skipped silently): the commands ElastiCache
  does not run (:data:`REFUSED`). A master never propagates them in normal operation, so one in the stream means
  someone is doing something to the source that the target cannot copy; dropping it could leave the target
  different without anyone knowing. Also refused: a db other than 0 for a single-db target (cluster mode).
- Relative TTLs of sources before 7.0 (``EXPIRE``/``PEXPIRE``/``SETEX``/``PSETEX``/``SET … EX|PX``) are made
  absolute at the time the command was *received* (the source ran it then, give or take the link's latency), so
  the target's expiry does not shift by the apply delay: ``PEXPIREAT``, and ``SET … PXAT`` on targets >= 6.2
  (older targets: ``SET`` then ``PEXPIREAT`` in one atomic unit). Sources 7.0+ already send absolute times.
- Expiry DELs: a standalone ``DEL``/``UNLINK`` of one key whose expiry, as this stream last set it, is due at
  its receipt (within :data:`EXPIRY_SLACK_MS`) is the source propagating an expiry, not the app deleting. It is
  applied as a conditional delete (:data:`EXPIRED_DEL_SCRIPT`): the key is deleted on the target only if it has no
  future TTL there beyond the slack — a key refreshed on the target (by anything that wrote to it after the
  stream's last expiry for it) is not deleted by the source's late notice that its old copy expired.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import hiredis

from elasticache_migrate.errors import CatchUpError, StreamRefused

__all__ = [
    "Command",
    "Op",
    "Unit",
    "TargetCaps",
    "CommandParser",
    "UnitPlanner",
    "REFUSED",
    "DROPPED",
    "EXPIRY_SLACK_MS",
    "EXPIRED_DEL_SCRIPT",
    "StreamUnits",
    "units",
]

STEP = "catch-up"

REFUSED = frozenset({b"BGREWRITEAOF", b"BGSAVE", b"CONFIG", b"DEBUG", b"MIGRATE", b"PSYNC", b"REPLICAOF", b"SAVE",
                     b"SLAVEOF", b"SHUTDOWN", b"SYNC", b"ACL", b"MODULE", b"CLUSTER", b"FAILOVER"})
"""Commands ElastiCache (node-based) does not run (online-notes.md, "What a client may send"): the stream stops."""

DROPPED = frozenset({b"PING", b"REPLCONF", b"PUBLISH", b"SPUBLISH"})
"""Commands of the link itself or of pub/sub: not applied (see the module's text for why)."""

EXPIRY_SLACK_MS = 1000
"""How far a key's stream-known expiry may lie after a DEL's receipt for the DEL to count as the source's expiry
(the source's active expiry runs 10 times a second, lazily on access; clocks of the two hosts differ a little)."""

EXPIRED_DEL_SCRIPT = """
local t = redis.call('PTTL', KEYS[1])
if t == -1 or t > tonumber(ARGV[1]) then return -1 end
return redis.call('DEL', KEYS[1])
"""
"""Delete KEYS[1] only if its TTL on the target is due (<= ARGV[1] ms) or it is already gone; -1 when it was kept."""

_TTL_RELATIVE = frozenset({b"EXPIRE", b"PEXPIRE", b"SETEX", b"PSETEX", b"SET"})


@dataclass(frozen=True)
class Command:
    """One command of the stream: its arguments, the replication offset after it, when it was received (ms)."""

    args: tuple[bytes, ...]
    end_offset: int
    received_ms: int

    @property
    def name(self) -> bytes:
        return self.args[0].upper()


@dataclass(frozen=True)
class Op:
    """One command to run on the target, in db ``db``."""

    db: int
    args: tuple[bytes, ...]
    expiry_del: bool = False   # the source's expiry of args[1]: run as EXPIRED_DEL_SCRIPT


@dataclass(frozen=True)
class Unit:
    """Applied all or nothing. ``end_offset``: the replication offset once it is applied; ``received_ms``: when
    its last command arrived. An empty ``ops`` (only dropped commands) still advances the offset."""

    ops: tuple[Op, ...]
    atomic: bool
    end_offset: int
    received_ms: int


@dataclass(frozen=True)
class TargetCaps:
    """What the stream is turned into: the source's and the target's versions, and whether the target has dbs."""

    source_version: tuple[int, ...]
    target_version: tuple[int, ...]
    multi_db: bool = True

    @property
    def relative_ttls(self) -> bool:
        """Sources before 7.0 send TTLs as they were given (relative)."""
        return self.source_version < (7, 0)

    @property
    def set_pxat(self) -> bool:
        return self.target_version >= (6, 2)


class CommandParser:
    """Incremental RESP parser for a replication stream starting at replication offset ``start_offset``.

    hiredis does the parsing (C); a command's size in bytes is its canonical RESP encoding's, which is what a
    master writes (``*<n>\\r\\n`` then ``$<len>\\r\\n<bytes>\\r\\n`` per argument).
    """

    def __init__(self, start_offset: int) -> None:
        self._reader = hiredis.Reader()
        self._offset = start_offset      # after the last whole command
        self._received = start_offset

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet make a whole command."""
        return self._received - self._offset

    @property
    def received_offset(self) -> int:
        """The offset after the newest byte received."""
        return self._received

    def feed(self, chunk: bytes, received_ms: int) -> list[Command]:
        """Every command ``chunk`` completes, in order."""
        self._reader.feed(chunk)
        self._received += len(chunk)
        out: list[Command] = []
        gets, offset = self._reader.gets, self._offset
        try:
            while (reply := gets()) is not False:
                if not isinstance(reply, list) or not reply:
                    raise CatchUpError(f"the replication stream is not RESP arrays at offset {offset}: "
                                       f"{reply!r:.60}", step=STEP)
                size = len(str(len(reply))) + 3
                for a in reply:
                    size += len(a) + len(str(len(a))) + 5
                offset += size
                out.append(Command(tuple(reply), offset, received_ms))
        except hiredis.ProtocolError as exc:
            raise CatchUpError(f"the replication stream is not RESP after offset {offset}: {exc}",
                               step=STEP) from exc
        self._offset = offset
        return out


@dataclass
class UnitPlanner:
    """Commands in order → units to apply (module text: the rules). Keeps the db, the open MULTI, expiries seen."""

    caps: TargetCaps
    db: int = 0
    _multi: list[Op] | None = None
    _expiry: dict[tuple[int, bytes], int] = field(default_factory=dict)   # (db, key) -> absolute ms

    def plan(self, cmd: Command) -> Unit | None:
        """The unit ``cmd`` completes, or None while a MULTI is open."""
        name = cmd.name
        if name == b"MULTI":
            self._multi = []
            return None
        if name == b"EXEC":
            queued, self._multi = self._multi or [], None
            return Unit(tuple(queued), True, cmd.end_offset, cmd.received_ms)
        ops: list[Op]
        if name == b"SELECT":
            self.db = int(cmd.args[1])
            ops = []
        elif name in DROPPED:
            ops = []
        elif name in REFUSED:
            raise StreamRefused(f"the source's replication stream holds {name.decode(errors='replace')} "
                                f"(offset {cmd.end_offset}), which ElastiCache does not run", step=STEP)
        else:
            if self.db and not self.caps.multi_db:
                raise StreamRefused(f"the stream writes db {self.db} (offset {cmd.end_offset}); a cluster-mode "
                                    "target has db 0 only", step=STEP)
            ops = self._convert(cmd)
        if self._multi is not None:
            self._multi.extend(ops)
            return None
        return Unit(tuple(ops), len(ops) > 1, cmd.end_offset, cmd.received_ms)

    def _convert(self, cmd: Command) -> list[Op]:
        args, name, db, now = cmd.args, cmd.name, self.db, cmd.received_ms
        if len(args) < 2:
            return [Op(db, args)]
        key = args[1]
        if name in (b"DEL", b"UNLINK") and len(args) == 2 and self._multi is None:
            due = self._expiry.pop((db, key), None)
            if due is not None and due <= now + EXPIRY_SLACK_MS:
                return [Op(db, args, expiry_del=True)]
            return [Op(db, args)]
        if name in (b"DEL", b"UNLINK", b"PERSIST"):
            for k in args[1:] if name != b"PERSIST" else args[1:2]:
                self._expiry.pop((db, k), None)
            return [Op(db, args)]
        if self.caps.relative_ttls and name in _TTL_RELATIVE:
            return self._absolute(cmd)
        if name == b"PEXPIREAT" and len(args) >= 3:
            self._expiry[(db, key)] = int(args[2])
        elif name == b"EXPIREAT" and len(args) >= 3:
            self._expiry[(db, key)] = int(args[2]) * 1000
        elif name == b"SET":
            self._note_set(db, key, args[3:], now)
        return [Op(db, args)]

    def _note_set(self, db: int, key: bytes, opts: tuple[bytes, ...], now: int) -> None:
        up = [o.upper() for o in opts]
        at: int | None = None
        for i, o in enumerate(up[:-1]):
            if o == b"PXAT":
                at = int(opts[i + 1])
            elif o == b"EXAT":
                at = int(opts[i + 1]) * 1000
            elif o == b"PX":
                at = now + int(opts[i + 1])
            elif o == b"EX":
                at = now + int(opts[i + 1]) * 1000
        if at is not None:
            self._expiry[(db, key)] = at
        elif b"KEEPTTL" not in up:
            self._expiry.pop((db, key), None)

    def _absolute(self, cmd: Command) -> list[Op]:
        args, name, db, now = cmd.args, cmd.name, self.db, cmd.received_ms
        key = args[1]
        if name in (b"EXPIRE", b"PEXPIRE"):
            ms = int(args[2]) * (1000 if name == b"EXPIRE" else 1)
            self._expiry[(db, key)] = now + ms
            return [Op(db, (b"PEXPIREAT", key, str(now + ms).encode(), *args[3:]))]
        if name in (b"SETEX", b"PSETEX"):
            ms = int(args[2]) * (1000 if name == b"SETEX" else 1)
            return self._set_at(db, key, args[3], (), now + ms)
        # SET key value [NX|XX] [EX s|PX ms] [KEEPTTL] [GET]
        rest = list(args[3:])
        at: int | None = None
        for i in range(len(rest) - 1):
            o = rest[i].upper()
            if o in (b"EX", b"PX"):
                at = now + int(rest[i + 1]) * (1000 if o == b"EX" else 1)
                del rest[i:i + 2]
                break
        if at is None:
            self._note_set(db, key, args[3:], now)
            return [Op(db, args)]
        return self._set_at(db, key, args[2], tuple(rest), at)

    def _set_at(self, db: int, key: bytes, value: bytes, opts: tuple[bytes, ...], at: int) -> list[Op]:
        self._expiry[(db, key)] = at
        if self.caps.set_pxat:
            return [Op(db, (b"SET", key, value, *opts, b"PXAT", str(at).encode()))]
        return [Op(db, (b"SET", key, value, *opts)), Op(db, (b"PEXPIREAT", key, str(at).encode()))]


class StreamUnits:
    """Parser and planner kept together across reads (a command split between two reads, an open MULTI, the
    db): feed it what the spool or link gave since the last call, get the units it completes."""

    def __init__(self, start_offset: int, caps: TargetCaps) -> None:
        self.parser = CommandParser(start_offset)
        self.planner = UnitPlanner(caps)

    def feed(self, chunk: bytes, received_ms: int) -> list[Unit]:
        plan = self.planner.plan
        return [u for u in map(plan, self.parser.feed(chunk, received_ms)) if u is not None]


def units(chunks: Iterable[tuple[bytes, int]], start_offset: int, caps: TargetCaps) -> Iterator[Unit]:
    """Every unit of a stream given as (chunk, received_ms) pairs, from ``start_offset``."""
    su = StreamUnits(start_offset, caps)
    for chunk, received_ms in chunks:
        yield from su.feed(chunk, received_ms)
