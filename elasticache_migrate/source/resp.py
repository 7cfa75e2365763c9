"""A bare RESP2 connection for bulk reads: commands packed and replies parsed by hiredis (C), no per-command
Python layers. verify sends thousands of small reads per round trip; through redis-py's pipeline each costs
~15 µs of Python, here ~1 µs.

Only what verify needs: AUTH, SELECT, TLS, and ``run(commands) -> replies``. Error replies come back as
``hiredis.ReplyError`` objects in the reply list (never raised), like a pipeline with raise_on_error=False.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis

__all__ = ["RawConnection", "ReplyError", "connection_settings", "raw_like", "pack_per_key"]

ReplyError = hiredis.ReplyError


class RawConnection:
    """One socket to a Redis server, for pipelined reads."""

    def __init__(self, host: str, port: int, *, password: str | None = None, username: str | None = None,
                 tls: bool = False, db: int = 0, timeout: float = 60, name: str | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self._sock = sock
        self._reader = hiredis.Reader(notEnoughData=False)
        hello: list[tuple[Any, ...]] = []
        if password:
            hello.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            hello.append(("SELECT", db))
        if name:
            hello.append(("CLIENT", "SETNAME", name))
        for reply in self.run(hello):
            if isinstance(reply, ReplyError):
                raise ConnectionError(f"{host}:{port} refused the connection setup: {reply}")

    def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send every command, then read exactly as many replies, in order."""
        if not commands:
            return []
        return self.run_packed(b"".join([hiredis.pack_command(tuple(c)) for c in commands]), len(commands))

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
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pack_per_key(command: bytes, keys: Sequence[bytes]) -> bytes:
    """``COMMAND key`` once per key, packed as RESP in one pass (cheaper than one pack_command per key)."""
    head = b"*2\r\n$%d\r\n%s\r\n" % (len(command), command)
    return b"".join([b"%s$%d\r\n%s\r\n" % (head, len(k), k) for k in keys])


def connection_settings(client: Any) -> dict[str, Any]:
    """Host, port, username, password, db, client name and TLS of a redis-py client (as
    elasticache_migrate.source.connection made it)."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    return {"host": kw["host"], "port": int(kw["port"]), "username": kw.get("username"),
            "password": kw.get("password"), "db": int(kw.get("db") or 0), "name": kw.get("client_name"),
            "tls": "SSL" in pool.connection_class.__name__}


def raw_like(client: Any, timeout: float = 60) -> RawConnection:
    """A RawConnection to the same server, user, database and TLS setting as a redis-py client."""
    c = connection_settings(client)
    return RawConnection(c["host"], c["port"], password=c["password"], username=c["username"], tls=c["tls"],
                         db=c["db"], timeout=timeout, name=c["name"])
