"""The source's writes while they go on: a pseudo-replica link (``PSYNC``), its RDB to a caller's sink and the
command stream after it spooled to disk, with ``REPLCONF ACK`` every second so the master keeps the link.

::

    → AUTH (when set), CLIENT SETNAME, [REPLCONF listening-port <p>], REPLCONF capa eof capa psync2   +OK each
    → PSYNC ? -1                      (or PSYNC <replid> <offset+1> to resume)
    ← +FULLRESYNC <replid> <offset>   then the RDB ($<len> disk-based, $EOF:<mark> diskless), then the stream
    ← +CONTINUE [<new replid>]        then the stream from the offset asked for (the backlog held it)
    → REPLCONF ACK <offset>           every ``ack_interval``; the first right after the RDB (a diskless master
                                      starts the stream only after it)

Redis >= 2.8 (3.2 included) and Valkey. The framing is pure, in
:mod:`~elasticache_migrate.source.replica_protocol`; the socket is opened and set up like every raw connection
(:mod:`~elasticache_migrate.source.resp`); the spool is :class:`~elasticache_migrate.source.spool.Spool`.
A link that ends raises :class:`~elasticache_migrate.errors.ReplicaLinkLost` (retryable) with the replid and
the offset spooled: resume with ``connect(link.position)``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import redis

from elasticache_migrate.errors import ReplicaLinkLost, SourceError
from elasticache_migrate.source.connection import redis_errors
from elasticache_migrate.source.replica_protocol import (
    FullResync,
    PsyncAnswer,
    RdbThenStream,
    ReplicaPosition,
    ack_command,
    parse_psync_line,
    psync_command,
    replica_handshake_commands,
)
from elasticache_migrate.source.resp import (
    MAX_LINE,
    HandshakeReplies,
    close_socket,
    connection_settings,
    encode_command,
    handshake,
    open_socket,
)
from elasticache_migrate.source.spool import Spool
from elasticache_migrate.source.sync_protocol import refusal

__all__ = ["ACK_INTERVAL", "ReplicaLink", "link_for"]

ACK_INTERVAL = 1.0
CHUNK = 1 << 20
RdbSink = Callable[[memoryview], object]


def link_for(r: redis.Redis, *, name: str, **kw: object) -> ReplicaLink:
    """A :class:`ReplicaLink` to the server, user, password and TLS setting of the source client ``r``."""
    c = connection_settings(r)
    return ReplicaLink(c.host, c.port, tls=c.tls, username=c.username, password=c.password, name=name,
                       **kw)  # type: ignore[arg-type]


class ReplicaLink:
    """One pseudo-replica connection: :meth:`connect`, then (after a :class:`FullResync`) :meth:`receive_rdb`,
    then :meth:`tail` (blocking) or :meth:`start` / :meth:`stop` (a thread) to spool the stream.

    ``timeout``: a link that sends nothing for this long is lost (the master PINGs every
    ``repl-ping-replica-period``, 10 s by default).
    """

    def __init__(self, host: str, port: int, *, tls: bool = False, username: str | None = None,
                 password: str | None = None, name: str, timeout: float = 60.0, ack_interval: float = ACK_INTERVAL,
                 listening_port: int | None = None, chunk: int = CHUNK) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self._password, self.name = username, password, name
        self.timeout, self.ack_interval, self.listening_port = timeout, ack_interval, listening_port
        self.answer: PsyncAnswer | None = None
        self.replid: str | None = None
        self.offset: int | None = None          # the replication offset of the last byte consumed
        self.rdb_bytes = 0
        self.acks = 0
        self.error: BaseException | None = None  # what ended the tail thread, if anything did
        self._sock: socket.socket | None = None
        self._buf = bytearray(chunk)
        self._early = b""                        # stream bytes read along with the answer or the RDB's end
        self._last_ack = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def position(self) -> ReplicaPosition | None:
        """Where the link stands (journal it; resume with ``connect(position)``), None before an answer."""
        if self.replid is None or self.offset is None:
            return None
        return ReplicaPosition(self.replid, self.offset)

    def describe(self) -> str:
        return f"the replica link to {self.host}:{self.port}"

    def _lost(self, what: str) -> ReplicaLinkLost:
        at = f" at offset {self.offset} of replid {self.replid}" if self.replid is not None else ""
        return ReplicaLinkLost(f"{self.describe()}: {what}{at}", replid=self.replid, offset=self.offset)

    def connect(self, position: ReplicaPosition | None = None) -> PsyncAnswer:
        """Connect, set up, send PSYNC (fresh, or resuming ``position``) and read the answer line.

        A :class:`FullResync` (asked for, or the backlog no longer holds ``position``) must be followed by
        :meth:`receive_rdb`; after a :class:`Continue` the stream goes on from ``position``.

        Raises:
            SourceError: the connection failed or the master refused (AUTH, ACL without psync/replconf, …).
        """
        try:
            with redis_errors("replica-link", SourceError, f"{self.describe()}: cannot connect"):
                self._sock = open_socket(self.host, self.port, tls=self.tls, timeout=self.timeout,
                                         connect_timeout=min(self.timeout, 10))
            with redis_errors("replica-link", SourceError, f"{self.describe()}: the handshake failed"):
                cmds = replica_handshake_commands(self.username, self._password, self.name, self.listening_port)
                for cmd, reply in zip(cmds, handshake(self._sock, cmds, HandshakeReplies(step="replica-link")),
                                      strict=False):
                    if reply.startswith("-") and cmd[:2] != ("CLIENT", "SETNAME"):
                        what = "AUTH" if cmd[0] == "AUTH" else " ".join(map(str, cmd[:2]))
                        err = refusal(what, reply[1:], self.username)
                        err.step = "replica-link"
                        raise err
                self._sock.sendall(encode_command(*psync_command(position)))
                line, rest = self._read_line()
            answer = parse_psync_line(line, self.username)
        except BaseException:
            self.close()
            raise
        self.answer = answer
        if isinstance(answer, FullResync):
            self.replid, self.offset = answer.replid, answer.offset
            self._framer = RdbThenStream(self.username)
            self._early = rest
        else:
            assert position is not None
            self.replid = answer.replid or position.replid
            self.offset = position.offset
            self._early = rest
        return answer

    def _read_line(self) -> tuple[str, bytes]:
        """The answer line (leading keepalive newlines skipped) and the bytes read after it."""
        assert self._sock is not None
        data = b""
        while (i := data.find(b"\r\n")) < 0:
            if len(data) > MAX_LINE:
                break
            more = self._sock.recv(4096)
            if not more:
                raise ConnectionError("the source closed the connection after PSYNC")
            data += more
        line = data[:i] if i >= 0 else data
        return line.lstrip(b"\n").decode("utf-8", "replace"), data[i + 2:] if i >= 0 else b""

    def _recv(self) -> memoryview | None:
        """The next bytes (in the link's one buffer, valid until the next read), None when none came within the
        socket's timeout. Raises ReplicaLinkLost when the link ended."""
        assert self._sock is not None
        try:
            n = self._sock.recv_into(self._buf)
        except TimeoutError:
            return None
        except OSError as exc:
            raise self._lost(f"the connection failed ({exc.__class__.__name__}: {exc})") from exc
        if not n:
            raise self._lost("the source closed the connection")
        return memoryview(self._buf)[:n]

    def receive_rdb(self, sink: RdbSink) -> int:
        """Pass the RDB payload to ``sink`` piece by piece (each a memoryview valid only during the call), then
        send the first ACK. Returns the payload's size.

        Raises:
            ReplicaLinkLost: the link ended during the transfer (resume is impossible: connect afresh).
        """
        assert isinstance(self.answer, FullResync) and self._sock is not None, "receive_rdb follows a FULLRESYNC"
        framer = self._framer
        waited, last = 0.0, time.monotonic()
        pending, self._early = self._early, b""
        while not framer.done:
            if pending:
                mv: memoryview | None = memoryview(pending)
                pending = b""
            else:
                mv = self._recv()
            if mv is None:
                waited = time.monotonic() - last
                if waited >= self.timeout:
                    raise self._lost(f"nothing came for {waited:.0f}s during the RDB transfer")
                continue
            last = time.monotonic()
            pieces, after = framer.feed(mv)
            for p in pieces:
                sink(p)
                self.rdb_bytes += len(p)
            if len(after):
                self._early = bytes(after)
        self._ack(force=True)
        return self.rdb_bytes

    def _ack(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_ack < self.ack_interval:
            return
        assert self._sock is not None and self.offset is not None
        try:
            self._sock.sendall(ack_command(self.offset))
        except OSError as exc:
            raise self._lost(f"sending REPLCONF ACK failed ({exc.__class__.__name__}: {exc})") from exc
        self._last_ack, self.acks = now, self.acks + 1

    def tail(self, spool: Spool, stop: threading.Event | None = None) -> ReplicaPosition:
        """Spool the command stream until ``stop`` is set, ACKing the spooled offset every ``ack_interval``.
        Returns the position reached.

        Raises:
            ReplicaLinkLost: the link ended (closed, reset, or silent for ``timeout``); its replid/offset say where
                to resume.
            ValueError: the spool does not end where the link stands.
        """
        assert self._sock is not None and self.offset is not None, "tail follows connect (and receive_rdb)"
        if spool.committed_offset != self.offset:
            raise ValueError(f"the spool ends at {spool.committed_offset}, the link stands at {self.offset}")
        stop = stop or self._stop
        self._sock.settimeout(min(0.25, self.ack_interval / 2))
        if self._early:
            self.offset = spool.append(self._early)
            self._early = b""
        self._ack(force=True)
        last = time.monotonic()
        while not stop.is_set():
            mv = self._recv()
            if mv is not None:
                self.offset = spool.append(mv)
                last = time.monotonic()
            elif time.monotonic() - last >= self.timeout:
                raise self._lost(f"nothing came for {self.timeout:.0f}s (the master PINGs every 10 s)")
            self._ack()
        spool.sync()
        return ReplicaPosition(self.replid or "", self.offset)

    def start(self, spool: Spool) -> None:
        """Run :meth:`tail` in a thread; :meth:`stop` ends it. A failure lands in :attr:`error`."""
        def run() -> None:
            try:
                self.tail(spool, self._stop)
            except BaseException as exc:  # noqa: BLE001  # handed to the caller through .error / stop()
                self.error = exc
        self._stop.clear()
        self._thread = threading.Thread(target=run, name=f"replica-link-{self.port}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the tail thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> ReplicaPosition | None:
        """End the tail thread and close the link; re-raises what ended it early, if anything did."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()
        if self.error is not None:
            raise self.error
        return self.position

    def close(self) -> None:
        """Close the link (the master forgets this replica)."""
        close_socket(self._sock)
        self._sock = None
