"""Build redis-py clients for the source and the target from the plan plus run-time secrets."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.sentinel import Sentinel

from elasticache_migrate.errors import SourceError, mapped
from elasticache_migrate.plan import MigrationPlan, RedisConnection
from elasticache_migrate.secrets import resolve_secret

__all__ = ["Endpoint", "client_name", "redis_client", "source_client", "target_client", "server_version"]


@dataclass(frozen=True)
class Endpoint:
    """Where a Redis server answers."""

    host: str
    port: int
    tls: bool = False

    def url(self) -> str:
        """redis://host:port (no credentials, safe to log)."""
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}"


def client_name(migration_id: str) -> str:
    """The CLIENT SETNAME this tool uses, so quiesce can tell its own connections apart."""
    return f"elasticache-migrate:{migration_id}"


def redis_client(host: str, port: int, *, tls: bool = False, username: str | None = None,
                 password: str | None = None, name: str | None = None, db: int = 0,
                 timeout: float = 30) -> redis.Redis:
    """A redis-py client that also speaks to old servers.

    RESP2 (``protocol=2``): redis-py 8 would otherwise open with HELLO, which Redis < 6 rejects.
    """
    return redis.Redis(host=host, port=port, db=db, username=username, password=password, ssl=tls,
                       client_name=name, protocol=2, socket_timeout=timeout, socket_connect_timeout=10,
                       decode_responses=False, health_check_interval=0)


def _resolve_master(conn: RedisConnection, password: str | None) -> tuple[str, int]:
    """Ask Sentinel for the current master's address."""
    with mapped("connect", SourceError, f"Sentinel {conn.host}:{conn.port}"):
        sentinel = Sentinel([(conn.host, conn.port)], socket_timeout=5, protocol=2)
        addr = sentinel.discover_master(conn.sentinel_master)
    return str(addr[0]), int(addr[1])


def source_client(plan: MigrationPlan, *, db: int = 0, timeout: float = 30) -> redis.Redis:
    """Client for the source master (resolved through Sentinel when the plan says so)."""
    conn = plan.source.redis
    password = resolve_secret(conn.password_secret, purpose="source Redis password")
    host, port = (conn.host, conn.port)
    if conn.sentinel_master:
        host, port = _resolve_master(conn, password)
    return redis_client(host, port, tls=conn.tls, username=conn.username, password=password,
                        name=client_name(plan.migration_id), db=db, timeout=timeout)


def target_client(plan: MigrationPlan, endpoint: Endpoint, *, db: int = 0, timeout: float = 30) -> redis.Redis:
    """Client for the new target endpoint (AUTH token from the plan's secret reference)."""
    token = resolve_secret(plan.target.auth_token_secret, purpose="target AUTH token")
    return redis_client(endpoint.host, endpoint.port, tls=endpoint.tls, password=token,
                        name=client_name(plan.migration_id), db=db, timeout=timeout)


def server_version(client: redis.Redis) -> tuple[str, tuple[int, int, int]]:
    """(flavor, version) of a server from INFO server: ('valkey', (8, 1, 8)) or ('redis', (7, 0, 15))."""
    info = client.info("server")
    flavor = "valkey" if "valkey_version" in info else "redis"
    raw = str(info.get("redis_version", "0.0.0"))
    if flavor == "valkey":
        raw = str(info.get("valkey_version", raw))
    return flavor, version_tuple(raw)


def version_tuple(raw: str) -> tuple[int, int, int]:
    """(7, 0, 15) from '7.0.15'; missing parts are 0 ('7.0' → (7, 0, 0))."""
    nums = [int(x) for x in raw.split(".")[:3] if x.isdigit()] + [0, 0, 0]
    return nums[0], nums[1], nums[2]
