"""A Sentinel-managed source (``source.redis.sentinel_master``) held still for the window, checked for a change
of master, and given back node by node.

Checked on Redis 3.2.6 and 7.0.15 Sentinel sets (a master, a replica, three Sentinels):

- **Hold**: a replica whose ``slave-priority`` (``replica-priority`` from 5.0) is 0 is never promoted. A
  ``SENTINEL failover`` then answers ``NOGOODSLAVE No suitable slave/replica to promote``, and an automatic
  failover (master down) aborts with ``-failover-abort-no-good-slave``; the master stays master. Sentinels learn a
  replica's priority from its INFO, re-read every 10 s (3.2; 7.0 was quicker): until then a failover can still
  pick it, so :func:`check_master` waits at the verify step until every reachable Sentinel reports the hold.
- **What a failover does to our changes**: Sentinel ``CONFIG REWRITE``\\ s every node it reconfigures (the
  promoted replica, the demoted master, the other replicas), which writes our runtime values into their
  ``redis.conf`` (7.0: ``min-replicas-to-write 1000000`` appeared in the old master's file). So a change is
  journaled with its node (address + ``run_id``) and undone on that node, and persisted again there when a
  failover (or a restart) may have written it to the file (:func:`restore_on_node`).
- **Change detection**: the master quiesce paused (address + ``run_id``) must still be the master every
  reachable Sentinel names, and still say ``role:master`` with the same ``run_id``, before approval (verify),
  right before the switch (fence-source) and after it (verify-cutover); otherwise :class:`MasterChanged` and the
  flow rolls back: the snapshot no longer describes the set's data.

The replicas are reached at the address their Sentinels report, with the plan's source credentials (a set's
nodes share them: replicas authenticate to the master with ``masterauth``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis

from elasticache_migrate.errors import MasterChanged, SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.secrets import resolve_secret
from elasticache_migrate.source.config import config_get, text
from elasticache_migrate.source.connection import client_name, redis_client, redis_errors
from elasticache_migrate.source.sentinel import (
    Address,
    discover,
    format_address,
    sentinel_addresses,
    sentinel_client,
    sentinel_password,
)
from elasticache_migrate.state import NodeChange, NodeRef, SetHold, version_tuple

__all__ = [
    "HOLD_CONFIRM_SECONDS",
    "ReplicaSeen",
    "priority_setting",
    "pairs",
    "master_change",
    "changed_message",
    "should_persist",
    "node_client",
    "node_ref",
    "sentinel_command",
    "known_sentinels",
    "replicas_seen",
    "hold_set",
    "check_master",
    "failover_seen",
    "restore_config",
    "restore_on_node",
    "set_nodes",
    "release_set",
]

HOLD_CONFIRM_SECONDS = 15.0  # Sentinels re-read a replica's INFO every 10 s


# --- pure -------------------------------------------------------------------------------------------------------

def priority_setting(version: tuple[int, int, int]) -> str:
    """The config name of a replica's promotion priority: ``replica-priority`` from 5.0, ``slave-priority`` before."""
    return "replica-priority" if version >= (5, 0, 0) else "slave-priority"


def pairs(reply: Any) -> dict[str, str]:
    """A Sentinel reply of alternating names and values (``SENTINEL master``, one of ``SENTINEL slaves``) as text."""
    if isinstance(reply, Mapping):
        return {text(k): text(v) for k, v in reply.items()}
    items = list(reply or [])
    return {text(items[i]): text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


@dataclass(frozen=True)
class ReplicaSeen:
    """One replica as a Sentinel reports it."""

    host: str
    port: int
    run_id: str
    flags: str
    priority: str

    @property
    def address(self) -> Address:
        return self.host, self.port

    @classmethod
    def from_reply(cls, fields: Mapping[str, str]) -> ReplicaSeen:
        return cls(host=fields.get("ip", ""), port=int(fields.get("port", 0)), run_id=fields.get("runid", ""),
                   flags=fields.get("flags", ""),
                   priority=fields.get("slave-priority", fields.get("replica-priority", "")))


def master_change(held: NodeRef, named: Sequence[tuple[Address, Address]], role: str | None,
                  run_id: str | None) -> tuple[str, Address | None] | None:
    """Why the set's master is no longer the node quiesce paused, and the master now named (if another); None
    when it still is.

    Args:
        held: the master at quiesce.
        named: (Sentinel, the master it names) for each reachable Sentinel.
        role: the held node's INFO role now (None: it did not answer).
        run_id: its INFO run_id now.
    """
    others = [(s, m) for s, m in named if m != (held.host, held.port)]
    if others:
        new = others[0][1]
        who = ", ".join(format_address(s) for s, _ in others)
        return f"the Sentinels ({who}) name {format_address(new)} as master, not {held.address}", new
    if role is None:
        return f"the master {held.address} does not answer", None
    if run_id != held.run_id:
        return (f"the master {held.address} restarted (run_id {held.run_id[:8]} → {(run_id or '?')[:8]}): it lost "
                "the window's settings and may have loaded other data"), None
    if role != "master":
        return f"{held.address} is {role} now, no longer master", None
    return None


def changed_message(master_name: str, held: NodeRef, reason: str, new: Address | None, step: str, now: float) -> str:
    """The run's reason to roll back after a change of master (named, with when and where it was seen)."""
    what = (f"Sentinel failed {master_name} over from {held.address} to {format_address(new)}" if new
            else f"the master of {master_name} changed ({reason})")
    seen = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    return (f"{what}, seen at {seen} in {step}, while the source was paused: rolled back — the snapshot no "
            f"longer is the set's data ({reason})")


def should_persist(has_config_file: bool, failover: bool, restarted: bool) -> bool:
    """Whether a value restored on a node is also written to its config file (CONFIG REWRITE).

    Only when the file may hold the value we are undoing: Sentinel rewrites the files of the nodes it
    reconfigures in a failover, and a restarted node read its file. The trade-off: CONFIG REWRITE writes the
    node's whole running config, so a setting someone changed by hand at run time (and meant to lose at the next
    restart) is kept too. After a failover Sentinel's own rewrite has already done that, so ours adds only what
    changed since; without one we leave the user's file alone.
    """
    return has_config_file and (failover or restarted)


# --- I/O: nodes ---------------------------------------------------------------------------------------------------

def node_client(plan: MigrationPlan, host: str, port: int, *, timeout: float = 10) -> redis.Redis:
    """A client for one node of the source's set (not whichever is master), with the plan's source credentials."""
    conn = plan.source.redis
    password = resolve_secret(conn.password_secret, purpose="source Redis password")
    return redis_client(host, port, tls=conn.tls, username=conn.username, password=password,
                        name=client_name(plan.migration_id), timeout=timeout)


def node_ref(r: redis.Redis, info: Mapping[str, Any] | None = None) -> NodeRef:
    """The node ``r`` talks to: the address it was opened with and INFO's run_id."""
    kw = r.connection_pool.connection_kwargs
    info = info if info is not None else r.info("server")
    return NodeRef(host=str(kw.get("host")), port=int(kw.get("port", 0)), run_id=str(info.get("run_id", "")))


def sentinel_command(plan: MigrationPlan, address: Address, *args: str) -> Any:
    conn = plan.source.redis
    with sentinel_client(conn, address, sentinel_password(conn)) as c:
        return c.execute_command("SENTINEL", *args)


def known_sentinels(plan: MigrationPlan, answered_by: Address) -> tuple[Address, ...]:
    """The plan's Sentinels and every other one ``answered_by`` knows for the master (``SENTINEL sentinels``)."""
    conn = plan.source.redis
    found = list(sentinel_addresses(conn))
    try:
        for s in sentinel_command(plan, answered_by, "SENTINELS", str(conn.sentinel_master)) or []:
            f = pairs(s)
            addr = (f.get("ip", ""), int(f.get("port", 0)))
            if addr[0] and addr not in found:
                found.append(addr)
    except (redis.RedisError, OSError):
        pass  # the plan's list is still known
    return tuple(found)


def replicas_seen(plan: MigrationPlan, sentinel: Address) -> list[ReplicaSeen]:
    """The master's replicas as ``sentinel`` reports them (``SENTINEL slaves``: every version has it)."""
    reply = sentinel_command(plan, sentinel, "SLAVES", str(plan.source.redis.sentinel_master))
    return [ReplicaSeen.from_reply(pairs(x)) for x in reply or []]


# --- hold --------------------------------------------------------------------------------------------------------

def hold_set(plan: MigrationPlan, master: NodeRef, log: Log = logger) -> SetHold | None:
    """Hold a Sentinel set still: every replica the Sentinels know gets priority 0 (journaled first, per node).

    ``master`` is the node quiesce paused; the Sentinels must still name it. A replica that cannot be reached is
    named in a warning: a failover to it would still be seen by :func:`check_master` (the run rolls back).
    None when the source is not a Sentinel set.

    Raises:
        MasterChanged: the Sentinels name another master (a failover as the window opened).
        SourceError: no Sentinel answered.
    """
    conn = plan.source.redis
    if not conn.sentinel_master:
        return None
    journal = Journal(plan.workdir)
    earlier = journal.read().sentinel_set
    view = discover(conn, sentinel_password(conn), strict=False)
    reason = master_change(master, [(a, view.master) for a in view.agreeing] + list(view.disagreeing), "master",
                           master.run_id)
    if reason is not None:
        raise MasterChanged(changed_message(conn.sentinel_master, master, reason[0], reason[1], "quiesce",
                                            time.time()), step="quiesce")
    # a re-run after a crash keeps the earlier run's changes (their previous values), whichever node is master now
    hold = SetHold(master_name=conn.sentinel_master, master=master, sentinels=known_sentinels(plan, view.answered_by),
                   changes=earlier.changes if earlier is not None else ())
    journal.update(sentinel_set=hold)
    with redis_errors("quiesce", SourceError, f"Sentinel {format_address(view.answered_by)}"):
        replicas = replicas_seen(plan, view.answered_by)
    for rep in replicas:
        try:
            hold = _hold_replica(plan, hold, rep, journal)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not hold replica %s (%s: %s): Sentinel could still promote it; a change of master "
                        "is still caught before the switch (the run then rolls back)", format_address(rep.address),
                        type(exc).__name__, exc)
    held = ", ".join(str(c.node) for c in hold.changes) or "none"
    log.info("Sentinel set %s held still: master %s; replicas with priority 0 (none can be promoted): %s",
             hold.master_name, master, held)
    return hold


def _hold_replica(plan: MigrationPlan, hold: SetHold, rep: ReplicaSeen, journal: Journal) -> SetHold:
    """Priority 0 on one replica, journaled before it is set (an earlier run's previous value is kept)."""
    with node_client(plan, rep.host, rep.port) as r:
        info = r.info("server")
        node = node_ref(r, info)
        setting = priority_setting(version_tuple(str(info.get("redis_version", "0"))))
        earlier = next((c for c in hold.changes if c.node.address == node.address and c.name == setting), None)
        previous = earlier.previous if earlier is not None else config_get(r, setting)
        if previous is None:
            raise redis.ResponseError(f"CONFIG GET {setting} gave no value (CONFIG renamed or not granted)")
        change = NodeChange(node=node, name=setting, previous=previous, value="0")
        hold = replace(hold, changes=tuple(c for c in hold.changes if c is not earlier) + (change,))
        journal.update(sentinel_set=hold)
        r.config_set(setting, "0")
    return hold


# --- checks -------------------------------------------------------------------------------------------------------

def _probe(plan: MigrationPlan, node: NodeRef) -> tuple[str | None, str | None, bool]:
    """(role, run_id, has a config file) of one node now; (None, None, False) when it does not answer."""
    try:
        with node_client(plan, node.host, node.port, timeout=5) as r:
            info = r.info()
    except (redis.RedisError, OSError):
        return None, None, False
    return str(info.get("role", "")), str(info.get("run_id", "")), bool(info.get("config_file"))


def check_master(plan: MigrationPlan, step: str, log: Log = logger, *, confirm: bool = False,
                 strict: bool = True) -> None:
    """The set's master is still the node quiesce paused, as every reachable Sentinel says and the node itself.

    ``confirm`` (at verify, before the approval): also wait (up to :data:`HOLD_CONFIRM_SECONDS`) until every
    reachable Sentinel reports the held replicas' priority 0, so from the approval on no failover can start.
    ``strict=False`` (verify-cutover, the app already on the target): a Sentinel set or master that does not
    answer is only warned about (rolling the app back onto it would not help); a change of master still raises.
    A no-op for a source that is not a Sentinel set.

    Raises:
        MasterChanged: a failover (or a restart of the master) happened during the window; the flow rolls back.
        SourceError: no Sentinel answered (``strict``).
    """
    journal = Journal(plan.workdir)
    hold = journal.read().sentinel_set
    conn = plan.source.redis
    if hold is None or not conn.sentinel_master:
        return
    try:
        view = discover(conn, sentinel_password(conn), strict=False)
    except SourceError as exc:
        if strict:
            raise
        log.warning("could not ask the old set's Sentinels whether %s is still master: %s", hold.master, exc)
        return
    role, run_id, _ = _probe(plan, hold.master)
    reason = master_change(hold.master, [(a, view.master) for a in view.agreeing] + list(view.disagreeing),
                           role, run_id)
    if reason is not None and role is None and reason[1] is None and not strict:
        log.warning("the old master %s does not answer (the Sentinels still name it): it cannot take writes, and "
                    "its replicas are held", hold.master)
        return
    if reason is not None:
        raise MasterChanged(changed_message(hold.master_name, hold.master, reason[0], reason[1], step, time.time()),
                            step=step)
    log.info("Sentinel set %s: %s is still the master (%d Sentinel(s) agree)", hold.master_name, hold.master,
             len(view.agreeing))
    if confirm and not hold.confirmed:
        _confirm_hold(plan, hold, view.agreeing, journal, log)


def _confirm_hold(plan: MigrationPlan, hold: SetHold, sentinels: Sequence[Address], journal: Journal,
                  log: Log) -> None:
    deadline = time.monotonic() + HOLD_CONFIRM_SECONDS
    held = {c.node.address for c in hold.changes}
    lagging: list[str] = []
    while True:
        lagging = []
        for s in sentinels:
            try:
                seen = {format_address(x.address): x.priority for x in replicas_seen(plan, s)}
            except (redis.RedisError, OSError):
                continue
            lagging += [f"{format_address(s)} sees {a} at priority {p}" for a, p in seen.items()
                        if a in held and p != "0"]
        if not lagging or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if lagging:
        log.warning("not every Sentinel reports the hold yet (%s): a failover is still caught before the switch",
                    "; ".join(lagging))
        return
    with Journal.lock:
        current = journal.read().sentinel_set
        if current is not None:
            journal.update(sentinel_set=replace(current, confirmed=True))
    log.info("every reachable Sentinel reports the replicas at priority 0: no failover can start")


def failover_seen(plan: MigrationPlan, hold: SetHold | None) -> bool:
    """True when the set's master is no longer the held one (or the Sentinels cannot tell): then a node's config
    file may hold our values (Sentinel rewrote it)."""
    conn = plan.source.redis
    if hold is None or not conn.sentinel_master:
        return False
    try:
        view = discover(conn, sentinel_password(conn), strict=False)
    except SourceError:
        return True  # cannot tell: persist (see should_persist)
    role, run_id, _ = _probe(plan, hold.master)
    named = [(a, view.master) for a in view.agreeing] + list(view.disagreeing)
    return master_change(hold.master, named, role or "master", run_id or hold.master.run_id) is not None


# --- undo ---------------------------------------------------------------------------------------------------------

def restore_config(r: redis.Redis, node: NodeRef, values: Mapping[str, str], *, failover: bool,
                   log: Log = logger) -> bool:
    """CONFIG SET ``values`` back through ``r`` (a client of ``node``, where they were changed), then CONFIG
    REWRITE there when its config file may hold the values being undone (:func:`should_persist`). Returns whether
    it rewrote the file.

    Raises:
        redis.RedisError, OSError: the node did not answer or refused (the caller maps or collects it).
    """
    info = r.info("server")
    for k, v in values.items():
        r.config_set(k, v)
    restarted = bool(node.run_id) and str(info.get("run_id", "")) != node.run_id
    if should_persist(bool(info.get("config_file")), failover, restarted):
        r.execute_command("CONFIG", "REWRITE")  # type: ignore[no-untyped-call]
        log.info("%s: restored %s and wrote it to its config file (%s)", node.address, dict(values),
                 "it restarted" if restarted else "a failover may have rewritten the file")
        return True
    log.info("%s: restored %s", node.address, dict(values))
    return False


def restore_on_node(plan: MigrationPlan, node: NodeRef, values: Mapping[str, str], *, failover: bool,
                    log: Log = logger) -> bool:
    """:func:`restore_config` on ``node``, reached at its address."""
    with node_client(plan, node.host, node.port) as r:
        return restore_config(r, node, values, failover=failover, log=log)


def set_nodes(plan: MigrationPlan, hold: SetHold | None) -> list[NodeRef]:
    """Every data node of the set this run may have reached: the held master and replicas, the master the
    Sentinels name now and its replicas (best effort: a Sentinel that does not answer adds nothing)."""
    found: dict[str, NodeRef] = {}
    if hold is not None:
        found[hold.master.address] = hold.master
        for c in hold.changes:
            found.setdefault(c.node.address, c.node)
    conn = plan.source.redis
    if conn.sentinel_master:
        try:
            view = discover(conn, sentinel_password(conn), strict=False)
            now = [NodeRef(view.master[0], view.master[1], "")]
            now += [NodeRef(x.host, x.port, x.run_id) for x in replicas_seen(plan, view.answered_by)]
        except (SourceError, redis.RedisError, OSError):
            now = []
        for n in now:
            found.setdefault(n.address, n)
    return list(found.values())


def release_set(plan: MigrationPlan, log: Log = logger) -> None:
    """Undo the hold: each replica's priority back on the node it was changed on (persisted where a failover may
    have rewritten it). Every change is tried; the ones that failed stay journaled for a re-run.

    Raises:
        SourceError: naming each node that could not be restored and the command to run there by hand.
    """
    journal = Journal(plan.workdir)
    hold = journal.read().sentinel_set
    if hold is None:
        return
    failover = failover_seen(plan, hold)
    failed: list[tuple[NodeChange, str]] = []
    for change in hold.changes:
        try:
            restore_on_node(plan, change.node, {change.name: change.previous}, failover=failover, log=log)
        except (redis.RedisError, OSError) as exc:
            failed.append((change, f"{type(exc).__name__}: {exc}"))
    if failed:
        journal.update(sentinel_set=replace(hold, changes=tuple(c for c, _ in failed)))
        raise SourceError("could not give back " + "; ".join(f"{c.node.address} ({why})" for c, why in failed),
                          remedy="run " + "; ".join(f"redis-cli -h {c.node.host} -p {c.node.port} CONFIG SET "
                                                    f"{c.name} {c.previous}" for c, _ in failed)
                          + " (then CONFIG REWRITE if it has a config file), or re-run the rollback",
                          step="unquiesce", retryable=True)
    journal.update(sentinel_set=None)
    if hold.changes:
        log.info("Sentinel set %s released: replica priorities restored on %s", hold.master_name,
                 ", ".join(c.node.address for c in hold.changes))
