"""The source-Redis seam: redis-py clients for the source and the target from the plan plus run-time secrets, and
Redis client exceptions mapped by class to the error tree."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator

import hiredis
import redis
import redis.exceptions

from elasticache_migrate.errors import MigrationError, SourceError, boundary
from elasticache_migrate.plan import MigrationPlan, RedisConnection
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.sentinel import discover, sentinel_password
from elasticache_migrate.state import Endpoint, ServerInfo

__all__ = ["Endpoint", "client_name", "redis_client", "resolve_master", "source_client", "target_client", "server_info",
           "redis_errors", "translate_redis"]


def client_name(migration_id: str) -> str:
    """The CLIENT SETNAME this tool uses, so quiesce can tell its own connections apart."""
    return f"elasticache-migrate:{migration_id}"


def redis_client(host: str, port: int, *, tls: bool = False, username: str | None = None,
                 password: str | None = None, name: str | None = None, db: int = 0,
                 timeout: float = 30, single_connection: bool = False) -> redis.Redis:
    """A redis-py client that also speaks to old servers.

    RESP2 (``protocol=2``): redis-py 8 would otherwise open with HELLO, which Redis < 6 rejects.
    ``single_connection``: one dedicated connection (named ``name`` again whenever it reconnects).
    """
    return redis.Redis(host=host, port=port, db=db, username=username, password=password, ssl=tls,
                       client_name=name, protocol=2, socket_timeout=timeout, socket_connect_timeout=10,
                       decode_responses=False, health_check_interval=0, single_connection_client=single_connection)


def resolve_master(conn: RedisConnection) -> tuple[str, int]:
    """The source's master address: ``host:port``, or the master the plan's Sentinels name (see
    :mod:`elasticache_migrate.source.sentinel`)."""
    if not conn.sentinel_master:
        return conn.host, conn.port
    return discover(conn, sentinel_password(conn)).master


def source_client(plan: MigrationPlan, *, db: int = 0, timeout: float = 30, single_connection: bool = False,
                  name: str | None = None) -> redis.Redis:
    """Client for the source master (resolved through Sentinel when the plan says so).

    ``name`` replaces the tool's usual CLIENT SETNAME (the window lock's connection has its own).
    """
    conn = plan.source.redis
    password = resolve_secret(conn.password_secret, purpose="source Redis password")
    host, port = resolve_master(conn)
    return redis_client(host, port, tls=conn.tls, username=conn.username, password=password,
                        name=name or client_name(plan.migration_id), db=db, timeout=timeout,
                        single_connection=single_connection)


def target_client(plan: MigrationPlan, endpoint: Endpoint, *, db: int = 0, timeout: float = 30) -> redis.Redis:
    """Client for the new target endpoint (AUTH token from the plan's secret reference)."""
    token = resolve_secret(plan.target.auth_token_secret, purpose="target AUTH token")
    return redis_client(endpoint.host, endpoint.port, tls=endpoint.tls, password=token,
                        name=client_name(plan.migration_id), db=db, timeout=timeout)


def server_info(client: redis.Redis) -> ServerInfo:
    """Which server ``client`` talks to, from INFO server."""
    return ServerInfo.from_info(client.info("server"))


def translate_redis(exc: Exception, step: str, error: type[MigrationError], prefix: str,
                    remedy: str | None = None) -> MigrationError | None:
    """redis-py, hiredis and socket exceptions of a Redis connection → the error tree, by class.

    redis-py already turns the server's error codes into classes (``WRONGPASS``/``NOAUTH`` →
    ``AuthenticationError``, ``NOPERM`` → ``NoPermissionError``, ``LOADING`` → ``BusyLoadingError``, …).
    ``remedy`` replaces the error class's default remedy for the transient failures of the connection itself
    (the SYNC stream names what to check on a replication link, and that the task is retried).
    """
    if isinstance(exc, redis.AuthenticationError):
        return SourceError(f"{prefix}Redis refused authentication ({exc})", step=step, retryable=False,
                           remedy="set the password secret named in the plan (env var or Prefect Secret)")
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return error(f"{prefix}the Redis user may not run this command: {exc}", step=step, retryable=False,
                     remedy="grant the command to the plan's ACL user (ACL SETUSER …), see the README")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):  # BusyLoadingError is a ConnectionError
        return error(f"{prefix}Redis error {type(exc).__name__}: {exc}", step=step, retryable=True, remedy=remedy)
    if isinstance(exc, (redis.RedisError, hiredis.ReplyError, hiredis.ProtocolError)):
        return error(f"{prefix}Redis error {type(exc).__name__}: {exc}", step=step, retryable=False)
    if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        # a socket reset, refused, timed out or its TLS session cut (a server restarting, a network blip): transient
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=True, remedy=remedy)
    if isinstance(exc, OSError):  # TLS failures, unreachable networks: not fixed by trying again at once
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=False)
    return None


@contextlib.contextmanager
def redis_errors(step: str, error: type[MigrationError] = SourceError, what: str | Callable[[], str] = "", *,
                 remedy: str | None = None) -> Iterator[None]:
    """Map Redis client exceptions raised inside the block to ``error`` (see :func:`translate_redis`).

    ``what`` names the operation in the message; a callable is asked only when something failed (so it can say
    how far the operation got).
    """
    def translate(exc: Exception, step: str, error: type[MigrationError], _prefix: str) -> MigrationError | None:
        where = what() if callable(what) else what
        return translate_redis(exc, step, error, f"{where}: " if where else "", remedy)

    with boundary(translate, step, error):
        yield
