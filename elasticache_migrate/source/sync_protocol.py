"""The SYNC transfer's wire protocol, pure: the handshake's commands, the master's answer to SYNC split into the
RDB payload's pieces, and what a refusal means for the operator. No socket here (that is
:class:`~elasticache_migrate.source.replication.ReplicationStream`); tested without a server. The protocol and
the measured facts that shaped the transfer are in :mod:`elasticache_migrate.source.replication`.
"""

from __future__ import annotations

from elasticache_migrate.errors import MigrationError, SnapshotError, SourceError
from elasticache_migrate.source.resp import MAX_LINE, Arg, setup_commands

__all__ = [
    "EOF_MARK_LEN",
    "SYNC_MIN_VERSION",
    "SyncReply",
    "handshake_commands",
    "refusal",
]

EOF_MARK_LEN = 40                 # CONFIG_RUN_ID_SIZE: the diskless end mark is 40 random hex characters
SYNC_MIN_VERSION = (7, 0, 0)      # REPLCONF rdb-only


def handshake_commands(username: str | None, password: str | None, name: str) -> list[tuple[Arg, ...]]:
    """The commands before SYNC: a connection's set-up (AUTH first when a password is set, a client name quiesce
    knows as ours), then the capabilities: the diskless EOF framing and rdb-only (no command stream after the
    payload)."""
    return [*setup_commands(username, password, name=name), ("REPLCONF", "capa", "eof"), ("REPLCONF", "rdb-only", "1")]


class SyncReply:
    """The master's answer to SYNC, fed as it arrives; :meth:`feed` returns the RDB payload's pieces.

    Keepalive newlines before the reply are counted and skipped; ``$<len>`` starts a disk-based payload of
    that length, ``$EOF:<mark>`` a diskless one ending with the mark (held back: the last 40 bytes seen are
    only passed on once more bytes follow them). An error line raises, naming what the master said.
    """

    def __init__(self, user: str | None = None) -> None:
        self.user = user                    # the ACL user, to name in a refusal
        self.framing: str | None = None     # "disk" | "diskless", once the header is read
        self.size: int | None = None        # payload length (disk-based only)
        self.received = 0                   # payload bytes passed on
        self.keepalives = 0
        self.done = False
        self._line = b""
        self._mark = b""
        self._tail = b""                    # diskless: the last bytes seen, possibly the mark
        self._left = 0                      # disk-based: payload bytes still to come

    @property
    def remaining(self) -> int | None:
        """Payload bytes still to come (disk-based), None when unknown (diskless, or before the header)."""
        return self._left if self.framing == "disk" else None

    @property
    def started(self) -> bool:
        """Whether the header has been read (the master has forked)."""
        return self.framing is not None

    def feed(self, data: bytes | memoryview) -> list[memoryview]:
        """The payload bytes in ``data``, in order (views on ``data`` where possible, never copies of it).

        Raises:
            SourceError: the master answered with an error line (see :func:`refusal`) or not in this protocol.
        """
        mv = memoryview(data)
        if self.done:
            return []  # a master without rdb-only would go on with its command stream: not ours to read
        if self.framing is None:
            mv = self._header(mv)
            if self.framing is None:
                return []
        if self.framing == "disk":
            n = min(len(mv), self._left)
            self._left -= n
            self.received += n
            self.done = self._left == 0
            return [mv[:n]] if n else []
        return self._diskless(mv)

    def _header(self, mv: memoryview) -> memoryview:
        """Consume keepalives and the header line; what follows it is payload."""
        i = 0
        while not self._line and i < len(mv) and mv[i] == 0x0A:
            self.keepalives += 1
            i += 1
        rest = bytes(mv[i:i + MAX_LINE + 2 - len(self._line)])
        end = (self._line + rest).find(b"\r\n")
        if end < 0:
            self._line += rest
            if len(self._line) > MAX_LINE:
                raise SourceError(f"the source answered SYNC with {self._line[:60]!r}…",
                                  remedy="check source.redis host/port: is it a Redis/Valkey master?", step="sync")
            return mv[len(mv):]
        used = end + 2 - len(self._line)
        line, self._line = (self._line + rest)[:end].decode("utf-8", "replace"), b""
        if line.startswith("$EOF:") and len(line) == 5 + EOF_MARK_LEN:
            self.framing, self._mark = "diskless", line[5:].encode()
        elif line.startswith("$") and line[1:].isdigit():
            self.framing, self.size = "disk", int(line[1:])
            self._left = self.size
            self.done = self.size == 0
        elif line.startswith("-"):
            raise refusal("SYNC", line[1:], self.user)
        else:
            raise SourceError(f"the source answered SYNC with {line[:80]!r}, not an RDB transfer",
                              remedy="point source.redis at a Redis/Valkey master >= 7.0, or set staging.transfer: "
                              "staged", step="sync", retryable=False)
        return mv[i + used:]

    def _diskless(self, mv: memoryview) -> list[memoryview]:
        """Pass on all but the last 40 bytes seen; the transfer ends when those are the mark."""
        k = EOF_MARK_LEN
        if len(mv) >= k:
            out = [memoryview(self._tail)] if self._tail else []
            last = mv[len(mv) - k:]
            body = mv[:len(mv) - k]
            if last == self._mark:
                self.done = True
                self._tail = b""
            else:
                self._tail = bytes(last)
            if len(body):
                out.append(body)
        else:  # a short read: combine it with the held-back tail (at most 80 bytes)
            joined = self._tail + bytes(mv)
            cut = max(0, len(joined) - k)
            out = [memoryview(joined[:cut])] if cut else []
            self._tail = joined[cut:]
            if len(self._tail) == k and self._tail == self._mark:
                self.done, self._tail = True, b""
        self.received += sum(len(p) for p in out)
        return out


def refusal(command: str, text: str, user: str | None = None) -> MigrationError:
    """The error for a master's refusal of the handshake or SYNC, with what to do about it."""
    who = user or "default"
    upper = text.upper()
    if upper.startswith("NOPERM") or "NO PERMISSIONS" in upper:
        return SourceError(f"the source's ACL user {who!r} may not run {command}: {text}",
                           remedy=f"grant it on the source: ACL SETUSER {who} +sync +replconf (or set "
                           "staging.transfer: staged to snapshot with BGSAVE instead)", step="sync", retryable=False)
    if upper.startswith(("NOAUTH", "WRONGPASS")) or "AUTHENTICATION" in upper or "PASSWORD" in upper:
        return SourceError(f"the source refused authentication for {command}: {text}",
                           remedy="set the password secret named in source.redis.password_secret (and username)",
                           step="sync", retryable=False)
    if "RDB-ONLY" in upper or "UNRECOGNIZED REPLCONF" in upper:
        return SourceError(f"the source does not support REPLCONF rdb-only ({text}): it is older than 7.0",
                           remedy="set staging.transfer: staged (or auto) for this source", step="sync",
                           retryable=False)
    if "UNKNOWN COMMAND" in upper:
        return SourceError(f"{command} is not available on the source ({text}): renamed or disabled",
                           remedy="set staging.transfer: staged, or allow the command for the migration",
                           step="sync", retryable=False)
    if upper.startswith(("LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN")):
        return SourceError(f"the source is not ready for {command}: {text}", step="sync", retryable=True)
    return SnapshotError(f"the source refused {command}: {text}",
                         remedy="read the source's log; set staging.transfer: staged to snapshot with BGSAVE instead",
                         step="sync", retryable=False)
