"""Sentinel discovery: which node is the master of a Sentinel-managed source, asked of every Sentinel the plan names.

Every Sentinel version the project supports (Redis 3.x to Valkey 9) is spoken to in RESP2 (``protocol=2``):
redis-py 8 opens connections with ``HELLO`` unless told otherwise, which Sentinels older than 6 answer with
``unknown command 'HELLO'`` (redis-py's own ``Sentinel(..., protocol=2)`` does not pass the protocol on to its
Sentinel connections, so it is not used here). A Sentinel with a password (``sentinel requirepass``, 5.0.1+) gets
AUTH from ``source.redis.sentinel_password_secret`` (and ``sentinel_username``, 6.2+).

:func:`discover` asks every Sentinel, in the plan's order, for ``SENTINEL get-master-addr-by-name``: the first
reachable one's answer is the master; reachable Sentinels that name another master mean a failover is under way
(a `SourceError`, unless the caller asks to see them); when none answers, the error names each address and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.errors import SourceError
from elasticache_migrate.plan import RedisConnection
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.state import ServerInfo

__all__ = [
    "Address",
    "NodeSeen",
    "SentinelSeen",
    "survey",
    "fields",
    "SentinelProblem",
    "SentinelView",
    "discover",
    "format_address",
    "parse_address",
    "sentinel_addresses",
    "sentinel_client",
    "sentinel_password",
]

Address = tuple[str, int]
"""(host, port)."""


def parse_address(value: str) -> Address:
    """``"host:port"`` (``"[v6]:port"``) → ``(host, port)``; the plan validated the shape."""
    host, _, port = value.strip().rpartition(":")
    return host.strip("[]"), int(port)


def format_address(address: Address) -> str:
    """``(host, port)`` → ``"host:port"`` (``[v6]:port``)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class SentinelProblem:
    """A Sentinel that gave no usable answer, and why (its error, or that it does not know the master)."""

    address: Address
    error: str

    def __str__(self) -> str:
        return f"{format_address(self.address)}: {self.error}"


@dataclass(frozen=True)
class SentinelView:
    """What the Sentinels say about the source's master.

    Attributes:
        master_name: The name the Sentinels monitor the master under (``source.redis.sentinel_master``).
        master: The master's address, as the first reachable Sentinel named it.
        answered_by: That Sentinel.
        agreeing: Every reachable Sentinel naming the same master (``answered_by`` included), in plan order.
        unreachable: The Sentinels that could not be asked (refused, timed out, AUTH failed, ...) or do not
            monitor ``master_name``, with their errors.
        disagreeing: Reachable Sentinels naming another master, with the master each named (empty unless
            :func:`discover` was called with ``strict=False``).
    """

    master_name: str
    master: Address
    answered_by: Address
    agreeing: tuple[Address, ...]
    unreachable: tuple[SentinelProblem, ...] = ()
    disagreeing: tuple[tuple[Address, Address], ...] = ()

    @property
    def reachable(self) -> tuple[Address, ...]:
        """Every Sentinel that answered (agreeing or not)."""
        return self.agreeing + tuple(a for a, _ in self.disagreeing)


def sentinel_addresses(conn: RedisConnection) -> list[Address]:
    """The Sentinels the plan names, first ``source.redis.host:port`` then ``source.redis.sentinels``."""
    return [(conn.host, conn.port), *(parse_address(a) for a in conn.sentinels)]


def sentinel_password(conn: RedisConnection) -> str | None:
    """The Sentinels' password, from ``source.redis.sentinel_password_secret`` (None when they have none)."""
    return resolve_secret(conn.sentinel_password_secret, purpose="Sentinel password")


def sentinel_client(conn: RedisConnection, address: Address, password: str | None, *,
                    timeout: float = 5.0) -> redis.Redis:
    """A RESP2 client for one Sentinel (AUTH when ``password`` is set), failing fast: no retries, short timeouts.

    Built like :func:`elasticache_migrate.source.connection.redis_client` (RESP2, TLS as the plan's source) but
    without redis-py's retries, so an unreachable Sentinel costs one connect timeout, not several.
    """
    host, port = address
    return redis.Redis(host=host, port=port, username=conn.sentinel_username, password=password, ssl=conn.tls,
                       protocol=2, socket_timeout=timeout, socket_connect_timeout=min(timeout, 3.0),
                       decode_responses=True, health_check_interval=0, retry=Retry(NoBackoff(), 0))


def _ask(conn: RedisConnection, address: Address, password: str | None, timeout: float) -> Address | str:
    """The master ``address`` names for ``conn.sentinel_master``, or why it gave none (a one-line error)."""
    client = sentinel_client(conn, address, password, timeout=timeout)
    try:
        reply = client.execute_command("SENTINEL", "get-master-addr-by-name", conn.sentinel_master)  # type: ignore[no-untyped-call]
    except redis.AuthenticationError as exc:
        return f"AUTH refused ({exc}): set source.redis.sentinel_password_secret (and sentinel_username)"
    except (redis.RedisError, OSError) as exc:  # refused, timed out, reset, TLS, an error reply: this one is out
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    if not reply:
        return f"does not monitor a master named {conn.sentinel_master!r}"
    host, port = reply
    return str(host), int(port)


def discover(conn: RedisConnection, password: str | None, *, strict: bool = True,
             timeout: float = 5.0) -> SentinelView:
    """Ask every Sentinel the plan names which node is the master of ``conn.sentinel_master``.

    Args:
        conn: ``source.redis`` with ``sentinel_master`` set.
        password: The Sentinels' password (:func:`sentinel_password`), or None.
        strict: Raise when reachable Sentinels disagree (a failover is under way); False reports them in the view.
        timeout: Seconds for each Sentinel's connect (at most 3) and answer.

    Returns:
        The view: the master the first reachable Sentinel names, who agreed, who could not be asked.

    Raises:
        SourceError: no Sentinel answered (each address with its error), or (strict) they disagree.
    """
    if not conn.sentinel_master:
        raise ValueError("discover() needs source.redis.sentinel_master")
    answers: list[tuple[Address, Address]] = []
    problems: list[SentinelProblem] = []
    for address in sentinel_addresses(conn):
        answer = _ask(conn, address, password, timeout)
        if isinstance(answer, str):
            problems.append(SentinelProblem(address, answer))
        else:
            answers.append((address, answer))
    name = conn.sentinel_master
    if not answers:
        raise SourceError(
            f"no Sentinel could name the master {name!r}: " + "; ".join(map(str, problems)), retryable=False,
            remedy="check source.redis.host/port and source.redis.sentinels (Sentinel ports, usually 26379), "
            "sentinel_master (SENTINEL masters on a Sentinel lists the names) and the Sentinel password secret")
    master = answers[0][1]
    agreeing = tuple(a for a, m in answers if m == master)
    disagreeing = tuple((a, m) for a, m in answers if m != master)
    if disagreeing and strict:
        said = "; ".join(f"{format_address(a)} says {format_address(m)}" for a, m in answers)
        raise SourceError(
            f"the Sentinels disagree about the master {name!r} ({said}): a failover is under way or the Sentinels "
            "are partitioned", retryable=True,
            remedy="wait until the failover has finished (every Sentinel names the same master, "
            f"SENTINEL get-master-addr-by-name {name}) and run again; if they keep disagreeing, fix the Sentinel set "
            "first")
    return SentinelView(master_name=name, master=master, answered_by=answers[0][0], agreeing=agreeing,
                        unreachable=tuple(problems), disagreeing=disagreeing)


@dataclass(frozen=True)
class NodeSeen:
    """A replica or another Sentinel as one Sentinel lists it (``SENTINEL slaves`` / ``SENTINEL sentinels``)."""

    address: Address
    flags: str  # e.g. "slave", "s_down,slave,disconnected", "sentinel"

    @property
    def down(self) -> bool:
        """Whether the Sentinel thinks it is down or cannot reach it."""
        return any(f in self.flags for f in ("s_down", "o_down", "disconnected"))


@dataclass(frozen=True)
class SentinelSeen:
    """One Sentinel of the plan, as preflight reports it.

    Attributes:
        address: Where it listens.
        error: Why it could not be asked (None when it answered).
        version: Its server and version (INFO server), e.g. ``"redis 3.2.6"``.
        master_flags: What it thinks of the master (``SENTINEL master``: "master", "s_down,master", ...).
        quorum: Its quorum for the master.
        replicas: The master's replicas it knows.
        sentinels: The other Sentinels it knows.
    """

    address: Address
    error: str | None = None
    version: str | None = None
    master_flags: str = ""
    quorum: int | None = None
    replicas: tuple[NodeSeen, ...] = ()
    sentinels: tuple[NodeSeen, ...] = ()


def fields(reply: object) -> dict[str, str]:
    """A Sentinel's flat ``[name, value, ...]`` reply (RESP2; a dict in RESP3) as a dict of strings."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    if isinstance(reply, list | tuple):
        return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}
    return {}


def _nodes(reply: object) -> tuple[NodeSeen, ...]:
    out = []
    for item in reply if isinstance(reply, list | tuple) else ():
        f = fields(item)
        if "ip" in f and "port" in f:
            out.append(NodeSeen((f["ip"], int(f["port"])), f.get("flags", "")))
    return tuple(out)


def survey(conn: RedisConnection, password: str | None, *, timeout: float = 5.0) -> list[SentinelSeen]:
    """Ask each Sentinel of the plan its version and what it knows of the master, its replicas and the other
    Sentinels (``SENTINEL slaves`` — Sentinels before 5.0 know no ``replicas`` — and ``SENTINEL sentinels``)."""
    name = conn.sentinel_master
    out: list[SentinelSeen] = []
    for address in sentinel_addresses(conn):
        client = sentinel_client(conn, address, password, timeout=timeout)
        try:
            version = str(ServerInfo.from_info(client.info("server")))  # "redis 3.2.6", "valkey 9.1.2"
            master = fields(client.execute_command("SENTINEL", "master", name))  # type: ignore[no-untyped-call]
            replicas = _nodes(client.execute_command("SENTINEL", "slaves", name))  # type: ignore[no-untyped-call]
            others = _nodes(client.execute_command("SENTINEL", "sentinels", name))  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError) as exc:
            out.append(SentinelSeen(address, error=f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            client.close()
        quorum = master.get("quorum")
        out.append(SentinelSeen(address, None, version, master.get("flags", ""),
                                int(quorum) if quorum and quorum.isdigit() else None, replicas, others))
    return out
