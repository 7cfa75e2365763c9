"""Preflight on the source's replicas and Sentinels: what the run will see of the set, and where the RDB file is
after a failover.

- the master the Sentinels name, which Sentinels answered and agree, the unreachable ones (warned: discovery works
  while one answers, a failover needs the quorum) and Sentinels of the set the plan does not list;
- each Sentinel's version, quorum and what it knows; each replica with its version and link state (any source);
- a master managed by Sentinel but named directly in the plan (its Sentinels are connected to it);
- the staged path (BGSAVE + the RDB file, ``source.kind`` host or docker) on a Sentinel source: the file is on the
  master's host, which a failover changes; the SYNC path needs no file (a source >= 7.0).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import redis

from elasticache_migrate.errors import MigrationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.reachability import worker_addresses
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.source.sentinel import (
    Address,
    SentinelSeen,
    discover,
    format_address,
    sentinel_password,
    survey,
)
from elasticache_migrate.source.sync_strategy import transfer_mode
from elasticache_migrate.state import ServerInfo

__all__ = ["sentinel_findings", "replica_findings", "rdb_host_findings", "is_local_host", "replicas_from_info"]

CHECK = "sentinel"


def replicas_from_info(info: dict[str, Any]) -> list[tuple[Address, str, str]]:
    """The replicas a master's INFO replication lists: (address, state, lag)."""
    out = []
    for key, value in sorted(info.items()):
        if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict) and "ip" in value:
            address = (str(value["ip"]), int(value["port"]))
            out.append((address, str(value.get("state", "?")), str(value.get("lag", "?"))))
    return out


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine (loopback, or one of its interface addresses)."""
    try:
        ips = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    mine = {cidr.split("/")[0] for cidr in worker_addresses()}
    return any(ipaddress.ip_address(ip.split("%")[0]).is_loopback or ip in mine for ip in ips)


def sentinel_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The master the Sentinels name, the Sentinels (reachable, versions, agreement) and the ones the plan lacks."""
    conn = plan.source.redis
    if not conn.sentinel_master:
        return _unlisted_sentinels(facts)
    try:
        password = sentinel_password(conn)
        view = discover(conn, password, strict=False)
    except MigrationError:
        return []  # the source check already blocks with the reason (no Sentinel answered, or the secret)
    name = conn.sentinel_master
    total = len(view.reachable) + len(view.unreachable)
    out = [Finding(CHECK, "info", f"master {name!r} is {format_address(view.master)} (named by Sentinel "
                   f"{format_address(view.answered_by)}; {len(view.agreeing)} of {total} Sentinel(s) in the plan "
                   "agree)")]
    if view.disagreeing:
        said = "; ".join(f"{format_address(a)} names {format_address(m)}" for a, m in view.disagreeing)
        out.append(Finding(CHECK, "block", f"the Sentinels disagree about the master {name!r} ({said}): a failover "
                           "is under way or the Sentinels are partitioned",
                           f"wait until every Sentinel names the same master (SENTINEL get-master-addr-by-name "
                           f"{name}); if they keep disagreeing, fix the Sentinel set first"))
    for problem in view.unreachable:
        out.append(Finding(CHECK, "warn", f"Sentinel {problem}", "bring it back or remove it from source.redis "
                           "(host/port, sentinels): discovery works while one Sentinel answers, but a failover (and "
                           "holding the set still for the window) needs the quorum"))
    seen = survey(conn, password)
    planned = {s.address for s in seen}
    known: set[Address] = set()
    for s in seen:
        if s.error is None:
            out.append(Finding(CHECK, "info", _sentinel_line(s)))
            known.update(n.address for n in s.sentinels)
            if any(f in s.master_flags for f in ("s_down", "o_down")):
                out.append(Finding(CHECK, "block", f"Sentinel {format_address(s.address)} sees the master as down "
                                   f"({s.master_flags})", "wait for the failover to finish, or fix the master"))
    missing = sorted(known - planned)
    if missing:
        listed = ", ".join(format_address(a) for a in missing)
        out.append(Finding(CHECK, "info", f"the set has Sentinel(s) {listed} that the plan does not list",
                           "add them to source.redis.sentinels: any listed one that answers can name the master"))
    return out


def _sentinel_line(s: SentinelSeen) -> str:
    down = [n for n in s.replicas if n.down]
    text = (f"Sentinel {format_address(s.address)}: {s.version}, quorum {s.quorum}, knows {len(s.replicas)} "
            f"replica(s) and {len(s.sentinels)} other Sentinel(s)")
    if down:
        text += "; replica(s) it sees down: " + ", ".join(f"{format_address(n.address)} ({n.flags})" for n in down)
    return text


def _unlisted_sentinels(facts: PreflightFacts) -> list[Finding]:
    """A master named directly whose Sentinels are connected to it: a failover would move it under the run."""
    r = facts.client
    if r is None:
        return []
    try:
        names = [str(c.get("name", "")) for c in r.client_list()]
    except (redis.RedisError, OSError):
        return []
    sentinels = [n for n in names if n.startswith("sentinel-")]
    if not sentinels:
        return []
    return [Finding(CHECK, "warn", f"{len(sentinels)} Sentinel connection(s) watch this master, but the plan names "
                    "the master directly: a failover before or during the run goes unseen",
                    "set source.redis.sentinel_master (host/port = a Sentinel, the others in source.redis.sentinels)")]


def replica_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The master's replicas (INFO replication), each with its version and link state."""
    if facts.server is None:
        return []
    replicas = replicas_from_info(facts.info)
    if not replicas:
        if plan.source.redis.sentinel_master:
            return [Finding("replicas", "info", "the source has no replica connected")]
        return []
    conn = plan.source.redis
    password = resolve_secret(conn.password_secret, purpose="source Redis password")
    out = []
    for address, state, lag in replicas:
        try:
            c = redis_client(address[0], address[1], tls=conn.tls, username=conn.username, password=password,
                             timeout=3)
            try:
                version = str(ServerInfo.from_info(c.info("server")))
            finally:
                c.close()
        except (redis.RedisError, OSError) as exc:
            version = f"version unknown ({type(exc).__name__})"
        out.append(Finding("replicas", "info",
                           f"replica {format_address(address)}: {version}, link {state}, lag {lag}"))
    return out


def rdb_host_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """On a Sentinel source read through its RDB file (the staged path): the file is on the master's host."""
    conn = plan.source.redis
    r = facts.client
    if not conn.sentinel_master or facts.server is None or r is None:
        return []
    if transfer_mode(plan.staging.transfer, facts.server) == "sync":
        fallback = " (unless auto falls back to the RDB file: see the sync finding)" \
            if plan.staging.transfer == "auto" else ""
        return [Finding(CHECK, "info", "the snapshot is read over SYNC from whichever node is master: no RDB file "
                        f"on a host is needed, a failover before the window does not change the data path{fallback}")]
    kwargs = r.connection_pool.connection_kwargs
    master = f"{kwargs.get('host')}:{kwargs.get('port')}"
    sync_hint = ("a source >= 7.0 is read over SYNC and needs no file" if facts.server.version < (7, 0)
                 else "staging.transfer auto/sync reads it over SYNC, which needs no file")
    if plan.source.kind == "docker":
        return [Finding(CHECK, "warn", f"the RDB is read from container {plan.source.container!r}, which must be the "
                        f"master's ({master} now); after a failover the master is another container",
                        f"check source.container right before the window; {sync_hint}")]
    if not is_local_host(str(kwargs.get("host"))):
        return [Finding(CHECK, "block", f"the master {master} is not on this host, but source.kind host reads the "
                        "RDB from this host's disk: the file here would not be the master's snapshot",
                        f"run the worker on the master's host (after a failover: the new master's), or use "
                        f"source.kind docker with that host's engine; {sync_hint}")]
    return [Finding(CHECK, "warn", f"the RDB is read from this host's disk, where the master {master} runs now; after "
                    "a failover the master is on another host, and a run from here is refused (preflight blocks)",
                    f"then run the worker on the new master's host; {sync_hint}")]
