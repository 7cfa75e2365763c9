"""Bare RESP2 sockets to a Redis server: one way to open and set one up, for both users of a raw socket.

- :class:`RawConnection`, for bulk reads: commands packed and replies parsed by hiredis (C), no per-command
  Python layers. verify sends thousands of small reads per round trip; through redis-py's pipeline each costs
  ~15 µs of Python, here ~1 µs. Only what verify needs: AUTH, SELECT, TLS, and ``run(commands) -> replies``.
  Error replies come back as ``hiredis.ReplyError`` objects in the reply list (never raised), like a pipeline
  with raise_on_error=False.
- :class:`~elasticache_migrate.source.replication.ReplicationStream`, the SYNC transfer's link, whose handshake
  adds ``REPLCONF`` to the same set-up.

Both open their socket with :func:`open_socket` (TCP, TLS) and send their set-up (:func:`setup_commands`: AUTH,
SELECT, CLIENT SETNAME) with :func:`handshake`, which reads the line replies (``+OK`` / ``-ERR …``) and leaves
what they mean to the caller. Socket errors are not mapped here: the caller's
:func:`~elasticache_migrate.source.connection.redis_errors` does that, by class.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import redis

from elasticache_migrate.errors import SourceError

__all__ = [
    "RawConnection",
    "ReplyError",
    "ConnectionSettings",
    "HandshakeReplies",
    "connection_settings",
    "encode_command",
    "handshake",
    "open_socket",
    "close_socket",
    "pack_per_key",
    "raw_like",
    "setup_commands",
]

ReplyError = hiredis.ReplyError
MAX_LINE = 1024                   # a reply line longer than this is not the protocol we speak

Arg = str | bytes | int


def encode_command(*args: Arg) -> bytes:
    """One command as a RESP array of bulk strings (packed by hiredis)."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # the stub types the tuple too narrowly
    return packed


def setup_commands(username: str | None, password: str | None, *, db: int = 0,
                   name: str | None = None) -> list[tuple[Arg, ...]]:
    """The commands that set a fresh connection up: AUTH first (when a password is set), SELECT (a database other
    than 0), CLIENT SETNAME (when named: quiesce tells this tool's connections apart by their name)."""
    cmds: list[tuple[Arg, ...]] = []
    if password:
        cmds.append(("AUTH", username, password) if username else ("AUTH", password))
    if db:
        cmds.append(("SELECT", db))
    if name:
        cmds.append(("CLIENT", "SETNAME", name))
    return cmds


def open_socket(host: str, port: int, *, tls: bool = False, timeout: float = 60,
                connect_timeout: float | None = None) -> socket.socket:
    """A connected socket (TLS-wrapped when asked): ``connect_timeout`` (default ``timeout``) to connect, then
    ``timeout`` for every read and write.

    Raises:
        OSError: the connection or the TLS handshake failed (map it with ``redis_errors``).
    """
    sock = socket.create_connection((host, port), timeout=timeout if connect_timeout is None else connect_timeout)
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return sock


class HandshakeReplies:
    """Splits a handshake's line replies (``+OK`` / ``-ERR …``) out of the bytes read."""

    def __init__(self, what: str = "the replication handshake", step: str | None = "sync") -> None:
        self.what, self.step = what, step
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        """The complete reply lines in ``data`` (with what came before), each without its CRLF.

        Raises:
            SourceError: a line longer than any reply of the protocol: not a Redis server.
        """
        self._buf += data
        lines = []
        while (i := self._buf.find(b"\r\n")) >= 0:
            lines.append(self._buf[:i].decode("utf-8", "replace"))
            self._buf = self._buf[i + 2:]
        if len(self._buf) > MAX_LINE:
            raise SourceError(f"the source answered {self.what} with {self._buf[:60]!r}…",
                              remedy="check source.redis host/port: is it a Redis/Valkey server?", step=self.step)
        return lines


def close_socket(sock: socket.socket | None) -> None:
    """Close ``sock`` (None: nothing), ignoring the errors of a socket already gone."""
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def handshake(sock: socket.socket, commands: Sequence[Sequence[Arg]],
              replies: HandshakeReplies | None = None) -> list[str]:
    """Send the set-up ``commands`` in one write and read one line reply for each, in order.

    Raises:
        ConnectionError: the server closed the connection before answering them all.
        OSError: the socket failed (map it with ``redis_errors``).
        SourceError: the answer is not line replies (see :class:`HandshakeReplies`).
    """
    if not commands:
        return []
    sock.sendall(b"".join([encode_command(*c) for c in commands]))
    parser, out = replies or HandshakeReplies(), list[str]()
    while len(out) < len(commands):
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection during the handshake")
        out += parser.feed(data)
    return out


class RawConnection:
    """One socket to a Redis server, for pipelined reads."""

    def __init__(self, host: str, port: int, *, password: str | None = None, username: str | None = None,
                 tls: bool = False, db: int = 0, timeout: float = 60, name: str | None = None) -> None:
        self._sock = open_socket(host, port, tls=tls, timeout=timeout)
        self._reader = hiredis.Reader(notEnoughData=False)
        try:
            answers = handshake(self._sock, setup_commands(username, password, db=db, name=name),
                                HandshakeReplies(f"the connection set-up of {host}:{port}", step=None))
            for reply in answers:
                if reply.startswith("-"):
                    raise ConnectionError(f"{host}:{port} refused the connection setup: {reply[1:]}")
        except BaseException:
            self.close()
            raise

    def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send every command, then read exactly as many replies, in order."""
        if not commands:
            return []
        return self.run_packed(b"".join([encode_command(*c) for c in commands]), len(commands))

    def run_packed(self, payload: bytes, want: int) -> list[Any]:
        """Send ``want`` commands already packed as RESP (see :func:`pack_per_key`), read their replies."""
        if not want:
            return []
        self._sock.sendall(payload)
        out: list[Any] = []
        reader, recv = self._reader, self._sock.recv
        while len(out) < want:
            reply = reader.gets()
            if reply is False:
                data = recv(1 << 20)
                if not data:
                    raise ConnectionError("the server closed the connection")
                reader.feed(data)
                continue
            out.append(reply)
        return out

    def close(self) -> None:
        """Close the socket."""
        close_socket(self._sock)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pack_per_key(command: bytes, keys: Sequence[bytes]) -> bytes:
    """``COMMAND key`` once per key, packed as RESP in one pass (cheaper than one pack_command per key)."""
    head = b"*2\r\n$%d\r\n%s\r\n" % (len(command), command)
    return b"".join([b"%s$%d\r\n%s\r\n" % (head, len(k), k) for k in keys])


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom a redis-py client connects (the password included: never log this)."""

    host: str
    port: int
    username: str | None
    password: str | None = None
    db: int = 0
    name: str | None = None
    tls: bool = False

    def __repr__(self) -> str:
        return (f"ConnectionSettings(host={self.host!r}, port={self.port}, username={self.username!r}, db={self.db}, "
                f"name={self.name!r}, tls={self.tls})")


def connection_settings(client: redis.Redis) -> ConnectionSettings:
    """Host, port, username, password, db, client name and TLS of a redis-py client (as
    elasticache_migrate.source.connection made it)."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    return ConnectionSettings(host=kw["host"], port=int(kw["port"]), username=kw.get("username"),
                              password=kw.get("password"), db=int(kw.get("db") or 0), name=kw.get("client_name"),
                              tls="SSL" in pool.connection_class.__name__)


def raw_like(client: redis.Redis, timeout: float = 60) -> RawConnection:
    """A RawConnection to the same server, user, database and TLS setting as a redis-py client."""
    c = connection_settings(client)
    return RawConnection(c.host, c.port, password=c.password, username=c.username, tls=c.tls, db=c.db,
                         timeout=timeout, name=c.name)
