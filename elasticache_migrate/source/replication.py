"""The RDB straight from the source's replication protocol, as ``redis-cli --rdb`` reads it: the snapshot is
uploaded while the source is still writing it (the ``sync`` transfer,
:func:`elasticache_migrate.staging.sync.sync_and_upload`).

::

    → AUTH (when a password is set), CLIENT SETNAME, REPLCONF capa eof, REPLCONF rdb-only 1      +OK each
    → SYNC
    ← "\\n" keepalives while the master gets ready, then either
        $<length>\\r\\n<payload>                    disk-based: the master's BGSAVE, sent once it is written
        $EOF:<40-byte mark>\\r\\n<payload><mark>    diskless: the fork writes the RDB to us as it goes
      and the master closes the link (rdb-only: no command stream follows; Redis/Valkey >= 7.0)

Three modules, by subject:

- :mod:`~elasticache_migrate.source.sync_protocol`: the framing, pure and tested without a server (the handshake's
  commands, :class:`SyncReply` splitting the answer into the payload's pieces, :func:`refusal`);
- this module: :class:`ReplicationStream`, the socket around it (opened and set up like every raw connection, by
  :mod:`elasticache_migrate.source.resp`; its socket errors mapped by class in
  :func:`~elasticache_migrate.source.connection.redis_errors`);
- :mod:`~elasticache_migrate.source.sync_strategy`: the decisions (which path, a BGSAVE first or not, the config
  changed for the transfer and put back, the snapshot record).

Measured on Redis 7.0.15 and Valkey 8.1.8, which shaped the
rest (tests/functional/test_replsync.py keeps these true):

- ``repl-diskless-sync-delay`` (default 5 s) is waited in full before the fork even when we are the only
  replica: 4.8 s of a 50 MB transfer's 5.2 s. With the delay at 0 the master forks at SYNC (first byte after
  0.02 s); ``repl-diskless-sync-max-replicas 1`` instead waits for the next replication cron tick (about 1 s,
  so it is left alone). The delay is set to 0 for the transfer, its value journaled first, and put back as soon
  as the payload starts (the fork has happened); a run killed in between has it restored by the re-run
  (:func:`restore_sync_config`, called on resume). Without CONFIG (renamed, or not granted) the delay is waited.
- The master writes 16 KiB at a time; reading each as it comes costs ~65,000 reads per GiB and their Python
  overhead downstream, so during the payload the socket wakes us for 128 KiB at least (``SO_RCVLOWAT``), or
  after 0.5 s for whatever is there: a third of this process's CPU at 300 MB.
- A diskless transfer leaves LASTSAVE, ``rdb_saves`` and ``rdb_changes_since_last_save`` as they were; a
  disk-based one is a BGSAVE like bgsave-wait's. verify proves no write followed the snapshot with exactly those
  counters, and ``save`` rules keep firing while writes are paused: after a diskless snapshot of a source with
  changes since its last save, the next automatic save would reset the counter and move LASTSAVE, and verify
  would fail the run. So in that case the master is asked for a disk-based transfer (``repl-diskless-sync no``
  until it answers), a BGSAVE streamed once written: slower, still no extract (:func:`sync_strategy`).
- Only sources >= 7.0 are offered this path: ``REPLCONF rdb-only`` (3.x answers "Unrecognized REPLCONF option")
  makes the master close the link after the payload instead of turning us into a replica; and before 6.2
  quiesce pauses writes with ``min-replicas-to-write``, which a replica connection could satisfy.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import redis

from elasticache_migrate.errors import SourceError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import client_name, redis_errors
from elasticache_migrate.source.resp import (
    HandshakeReplies,
    close_socket,
    connection_settings,
    encode_command,
    handshake,
    open_socket,
)
from elasticache_migrate.source.sync_protocol import (
    SyncReply,
    handshake_commands,
    refusal,
)

__all__ = ["CHUNK", "BATCH", "ReplicationStream", "stream_for"]

CHUNK = 1 << 20                   # the read buffer
BATCH = 128 << 10                 # during the payload, wake up for reads of at least this much (SO_RCVLOWAT)
_BATCH_WAIT = 0.5                 # ... or after this long, for whatever is there
_LINK_REMEDY = ("check the network and the source's log (repl-timeout, client-output-buffer-limit replica); the "
                "task is retried")


def stream_for(plan: MigrationPlan, r: redis.Redis, *, on_start: Callable[[SyncReply], object] | None = None,
               timeout: float = 60) -> ReplicationStream:
    """A :class:`ReplicationStream` to the server, user, password and TLS setting of the source client ``r``
    (elasticache_migrate.source.connection resolved Sentinel and the password secret for it)."""
    c = connection_settings(r)
    return ReplicationStream(c.host, c.port, tls=c.tls, username=c.username, password=c.password,
                             name=client_name(plan.migration_id), timeout=timeout, on_start=on_start)


class ReplicationStream:
    """The RDB payload of one SYNC, chunk by chunk: iterate it once.

    Memory is one read buffer (``chunk`` bytes, reused) plus at most 80 held-back bytes. ``on_start`` is called once
    the header has been read (the master has forked or finished its BGSAVE): config changed for the transfer
    is put back there. :meth:`open` goes as far as the header (so a refusal is known before anything is
    uploaded); iterating opens it if that was not done.
    """

    def __init__(self, host: str, port: int, *, tls: bool = False, username: str | None = None,
                 password: str | None = None, name: str, timeout: float = 60, chunk: int = CHUNK,
                 on_start: Callable[[SyncReply], object] | None = None) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self._password, self.name = username, password, name
        self.timeout, self.chunk, self.on_start = timeout, chunk, on_start
        self.reply = SyncReply(username)
        self.first_byte_s: float | None = None   # seconds from SYNC to the payload header
        self.seconds: float = 0.0                # seconds from SYNC to the end mark / last byte
        self._sock: socket.socket | None = None
        self._pending: list[bytes] = []
        self._buf = bytearray(chunk)  # every read lands here: no allocation per read (malloc would fragment)
        self._lowat = 1
        self._t0 = 0.0

    def describe(self) -> str:
        return f"SYNC from {self.host}:{self.port}"

    def _where(self, what: str) -> str:
        """``what`` went wrong, and how far the transfer had got."""
        r = self.reply
        if r.started:
            of = f" of {r.size:,}" if r.size is not None else ""
            what = f"{what} after {r.received:,}{of} bytes of the {r.framing} RDB transfer"
        return f"{self.describe()}: {what}"

    def _fail(self, what: str) -> SourceError:
        """The link ended without a socket error (the master closed it): retried, as a cut link is."""
        return SourceError(self._where(what), remedy=_LINK_REMEDY, step="sync-upload", retryable=True)

    def _link(self, what: Callable[[], str]) -> AbstractContextManager[None]:
        """Socket errors inside the block, mapped by class (a reset or a timeout is retried) and named with
        ``what()`` and the transfer's progress."""
        return redis_errors("sync-upload", SourceError, lambda: self._where(what()), remedy=_LINK_REMEDY)

    def _handshake(self, sock: socket.socket) -> None:
        """The connection's set-up and the capabilities (see :func:`handshake_commands`); a refusal is named."""
        cmds = handshake_commands(self.username, self._password, self.name)
        for cmd, reply in zip(cmds, handshake(sock, cmds, HandshakeReplies()), strict=False):
            if reply.startswith("-") and cmd[:2] != ("CLIENT", "SETNAME"):  # the name is a courtesy
                raise refusal(" ".join(map(str, cmd[:2])) if cmd[0] != "AUTH" else "AUTH", reply[1:], self.username)

    def open(self) -> None:
        """Connect, authenticate, send SYNC and read up to the payload's header (the master has forked).

        Raises:
            SourceError: refused (see :func:`refusal`), or the connection failed; nothing was sent anywhere.
            SnapshotError: the master refused SYNC for another reason.
        """
        try:
            with self._link(lambda: "cannot connect"):
                self._sock = open_socket(self.host, self.port, tls=self.tls, timeout=self.timeout,
                                         connect_timeout=min(self.timeout, 10))
            with self._link(lambda: "the connection failed during the handshake"):
                self._handshake(self._sock)
                self._sock.sendall(encode_command("SYNC"))
            self._t0 = time.monotonic()
            while not self.reply.started:
                self._pending += [bytes(p) for p in self.reply.feed(self._recv())]
            self.first_byte_s = time.monotonic() - self._t0
            if self.on_start is not None:
                self.on_start(self.reply)
        except BaseException:
            self.close()
            raise

    def _recv(self) -> memoryview:
        """The next bytes from the master, in the stream's one read buffer (valid until the next read)."""
        sock = self._sock
        assert sock is not None
        waited, gave_up = 0.0, False
        with self._link(lambda: f"nothing came for {waited:.0f}s" if gave_up else "the connection failed"):
            while True:
                try:
                    n = sock.recv_into(self._buf)
                    break
                except TimeoutError:
                    if self._lowat > 1:  # less than a batch came within _BATCH_WAIT: take what there is
                        waited += _BATCH_WAIT
                        self._set_lowat(1)
                        continue
                    waited += sock.gettimeout() or 0.0
                    if waited < self.timeout:
                        continue
                    gave_up = True  # no byte, not even a keepalive, for `timeout` seconds
                    raise
        if not n:
            raise self._fail("the source closed the connection" if self.reply.started else
                             "the source closed the connection before sending the RDB (its fork or BGSAVE failed? "
                             "see its log)")
        return memoryview(self._buf)[:n]

    def _set_lowat(self, n: int) -> None:
        """Wake up only once ``n`` bytes are ready. The master writes 16 KiB at a time: read one by one, that is
        ~65,000 reads per GiB, each with its Python overhead downstream; batched, ~8,000."""
        if n != self._lowat and self._sock is not None and not self.tls:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)
            self._lowat = n

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The payload's pieces. A memoryview piece is valid until the next one is asked for: consume it, or copy it.
        """
        if self._sock is None:
            self.open()
        assert self._sock is not None
        try:
            yield from self._pending
            self._pending = []
            reply = self.reply
            if not self.tls:
                self._sock.settimeout(_BATCH_WAIT)
            while not reply.done:
                left = reply.remaining
                self._set_lowat(BATCH if left is None else max(1, min(BATCH, left)))
                yield from reply.feed(self._recv())
            self.seconds = time.monotonic() - self._t0
        finally:
            self.close()

    def close(self) -> None:
        """Close the replication link (the master forgets this replica)."""
        close_socket(self._sock)
        self._sock = None
