"""A pseudo-replica's wire protocol, pure: the PSYNC handshake's commands, the master's answer to PSYNC
(``+FULLRESYNC <replid> <offset>`` / ``+CONTINUE [<replid>]``), the RDB payload framed as for SYNC (reusing
:class:`~elasticache_migrate.source.sync_protocol.SyncReply`) with the bytes after it kept: they are the first
bytes of the command stream. No socket here (that is :mod:`elasticache_migrate.source.replica_link`).

Offsets follow the master's ``master_repl_offset``: ``+FULLRESYNC <id> <o>`` means the RDB holds every write up
to offset ``o``; the stream's first byte after it is byte ``o + 1`` and, once ``n`` stream bytes are consumed, the
replica's offset is ``o + n`` (what ``REPLCONF ACK`` reports). A resume asks ``PSYNC <replid> <offset + 1>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from elasticache_migrate.errors import SourceError
from elasticache_migrate.source.resp import MAX_LINE, Arg, setup_commands
from elasticache_migrate.source.sync_protocol import SyncReply, refusal

__all__ = [
    "Continue",
    "FullResync",
    "PsyncAnswer",
    "ReplicaPosition",
    "RdbThenStream",
    "ack_command",
    "parse_psync_line",
    "psync_command",
    "replica_handshake_commands",
]


@dataclass(frozen=True)
class ReplicaPosition:
    """Where a pseudo-replica stands in the master's replication stream: journal this to resume.

    ``offset`` is the master replication offset of the last byte received and spooled (what ``REPLCONF ACK``
    reports); a resume asks for the next byte, ``PSYNC <replid> <offset + 1>``.
    """

    replid: str
    offset: int

    @property
    def next_byte(self) -> int:
        """The offset a resume asks PSYNC for."""
        return self.offset + 1


@dataclass(frozen=True)
class FullResync:
    """``+FULLRESYNC <replid> <offset>``: an RDB of everything up to ``offset`` follows, then the stream."""

    replid: str
    offset: int


@dataclass(frozen=True)
class Continue:
    """``+CONTINUE [<replid>]``: the stream goes on from the offset asked for (no RDB). ``replid`` is the master's
    new replication id when it changed (psync2, Redis >= 4.0), else None (the id asked for stays valid)."""

    replid: str | None


PsyncAnswer = FullResync | Continue


def replica_handshake_commands(username: str | None, password: str | None, name: str,
                               listening_port: int | None = None) -> list[tuple[Arg, ...]]:
    """The commands before PSYNC: the connection's set-up (AUTH, CLIENT SETNAME), ``REPLCONF listening-port``
    (when given: the master lists replicas with it), then the capabilities ``eof`` (diskless framing, 2.8.18+)
    and ``psync2`` (4.0+; older masters ignore capabilities they do not know)."""
    cmds = setup_commands(username, password, name=name)
    if listening_port is not None:
        cmds.append(("REPLCONF", "listening-port", listening_port))
    cmds.append(("REPLCONF", "capa", "eof", "capa", "psync2"))
    return cmds


def psync_command(position: ReplicaPosition | None) -> tuple[Arg, ...]:
    """``PSYNC ? -1`` for a fresh seed, ``PSYNC <replid> <offset + 1>`` to resume from ``position``."""
    if position is None:
        return ("PSYNC", "?", -1)
    return ("PSYNC", position.replid, position.next_byte)


def ack_command(offset: int) -> bytes:
    """``REPLCONF ACK <offset>`` packed as RESP."""
    text = str(offset).encode()
    return b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n" % (len(text), text)


def parse_psync_line(line: str, user: str | None = None) -> PsyncAnswer:
    """The master's answer line to PSYNC (without CRLF).

    Raises:
        SourceError: the master refused (see :func:`~elasticache_migrate.source.sync_protocol.refusal`) or answered
            outside the protocol.
    """
    parts = line.split()
    if parts and parts[0] == "+FULLRESYNC" and len(parts) == 3 and parts[2].lstrip("-").isdigit():
        return FullResync(parts[1], int(parts[2]))
    if parts and parts[0] == "+CONTINUE" and len(parts) <= 2:
        return Continue(parts[1] if len(parts) == 2 else None)
    if line.startswith("-"):
        err = refusal("PSYNC", line[1:], user)
        err.step = "replica-link"
        if "may not run" in err.message:  # the SYNC path's remedy names +sync; a replica link needs +psync
            err.remedy = (f"grant it on the source: ACL SETUSER {user or 'default'} +psync +replconf (or choose the "
                          "offline mode)")
        raise err
    raise SourceError(f"the source answered PSYNC with {line[:80]!r}, not a replication stream",
                      remedy="point source.redis at a Redis (>= 2.8) or Valkey master", step="replica-link",
                      retryable=False)


class RdbThenStream:
    """The bytes after the PSYNC answer, fed as they arrive: the RDB payload's pieces (disk ``$<len>`` or diskless
    ``$EOF:<mark>``, framed by :class:`SyncReply`), then the command stream's bytes.

    :meth:`feed` returns ``(rdb_pieces, stream_bytes)``. A diskless master starts the stream only after the
    replica's first ACK following the mark, so stream bytes there never share a read with the mark; a disk-based
    one sends its buffered stream right after the payload, possibly in the same read.
    """

    def __init__(self, user: str | None = None) -> None:
        self.reply = SyncReply(user)

    @property
    def done(self) -> bool:
        """Whether the whole RDB payload has been passed on."""
        return self.reply.done

    def feed(self, data: bytes | memoryview) -> tuple[list[memoryview], memoryview]:
        mv = memoryview(data)
        r = self.reply
        if r.done:
            return [], mv
        if r.framing == "disk":  # split here: SyncReply drops what follows the payload
            n = min(len(mv), r.remaining or 0)
            return r.feed(mv[:n]), mv[n:]
        if r.framing is None:
            pieces = r.feed(mv)
            if r.framing == "disk":  # the header was in this read: SyncReply returned at most the payload's part
                used = len(mv) - self._after_header(mv)
                taken = sum(len(p) for p in pieces)
                return pieces, mv[used + taken:]
            return pieces, mv[len(mv):]
        return r.feed(mv), mv[len(mv):]

    @staticmethod
    def _after_header(mv: memoryview) -> int:
        """How many bytes of ``mv`` follow the header line (the header ends this read's first CRLF)."""
        end = bytes(mv[:MAX_LINE + 2]).find(b"\r\n")
        return len(mv) - (end + 2) if end >= 0 else 0
