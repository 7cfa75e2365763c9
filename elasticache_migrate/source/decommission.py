"""Decommission, part of finish-source after a verified cutover: the old Sentinel set cannot take writes again.

Without it, stopping the old master (the usual next step) makes its Sentinels promote a replica within seconds
(``down-after-milliseconds`` + the failover), and that replica accepts writes: a split brain with the target.
So, after the verified switch:

1. every Sentinel that monitors the old master stops (``SENTINEL REMOVE <name>``; checked on 3.2 and 7.0: it
   forgets the master, its replicas and the other Sentinels, rewrites its own config file so a restart keeps
   it so, and ``get-master-addr-by-name`` answers nil). What it monitored (quorum, down-after, failover-timeout,
   parallel-syncs, scripts) is journaled first, so it can be MONITORed again (:func:`monitor_commands`);
2. the replicas keep priority 0 (the hold) and are fenced like the master (``min-replicas-to-write``
   1000000): even a Sentinel that could not be reached, or a hand-made ``REPLICAOF NO ONE``, yields a node
   that refuses every write (NOREPLICAS).

Nothing is persisted to the nodes' config files: a node restarted by hand comes back as its file says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import redis

from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.config import config_get_many
from elasticache_migrate.source.quiesce import finish, refuse_writes_settings, replica_config_names
from elasticache_migrate.source.sentinel import Address, format_address, sentinel_addresses
from elasticache_migrate.source.sentinel_set import node_client, pairs, sentinel_command
from elasticache_migrate.state import MonitorRecord, NodeRef, QuiesceState, SetHold, version_tuple

__all__ = ["MONITOR_SETTINGS", "monitor_record", "monitor_commands", "decommission", "retire"]

MONITOR_SETTINGS = ("down-after-milliseconds", "failover-timeout", "parallel-syncs", "notification-script",
                    "client-reconfig-script")
"""The per-master settings ``SENTINEL master`` reports and ``SENTINEL SET`` takes back (auth-pass is not shown)."""


def monitor_record(sentinel: Address, fields: Mapping[str, str]) -> MonitorRecord:
    """What a Sentinel monitors, from its ``SENTINEL master <name>`` reply."""
    return MonitorRecord(sentinel=sentinel, master_name=fields["name"], host=fields["ip"], port=int(fields["port"]),
                         quorum=int(fields["quorum"]),
                         settings={k: fields[k] for k in MONITOR_SETTINGS if fields.get(k)})


def monitor_commands(record: MonitorRecord, *, auth: bool = False) -> list[tuple[str, ...]]:
    """The Sentinel commands that MONITOR the master again as it was (``auth``: plus the auth-pass, left as
    ``<password>``)."""
    name = record.master_name
    cmds: list[tuple[str, ...]] = [("SENTINEL", "MONITOR", name, record.host, str(record.port), str(record.quorum))]
    for k, v in record.settings.items():
        cmds.append(("SENTINEL", "SET", name, k, v))
    if auth:
        cmds.append(("SENTINEL", "SET", name, "auth-pass", "<password>"))
    return cmds


def _hint(records: Sequence[MonitorRecord], auth: bool) -> str:
    return " / ".join(f"on {format_address(r.sentinel)}: " + "; ".join(" ".join(c) for c in monitor_commands(
        r, auth=auth)) for r in records)


def decommission(plan: MigrationPlan, log: Log = logger) -> str:
    """Take the old Sentinel set out of service (see the module docstring); returns what was done and how to
    take it back, for the run's summary. A no-op ("") when the source is not a Sentinel set. Never raises for a
    Sentinel or replica that does not answer: it is named in the summary (the cutover is already verified)."""
    conn = plan.source.redis
    if not conn.sentinel_master:
        return ""
    journal = Journal(plan.workdir)
    hold = journal.read().sentinel_set
    if hold is None:
        log.warning("no journaled Sentinel hold: asking only the plan's Sentinels to stop monitoring %s",
                    conn.sentinel_master)
        hold = SetHold(master_name=conn.sentinel_master, master=NodeRef(conn.host, conn.port, ""),
                       sentinels=tuple(sentinel_addresses(conn)))
    removed, missed = _remove_monitors(plan, hold, journal, log)
    fenced, unfenced = _fence_replicas(plan, hold, log)
    parts = [f"old Sentinel set {hold.master_name} decommissioned: {len(removed)} Sentinel(s) no longer monitor "
             "it (SENTINEL REMOVE), so stopping the old master promotes nothing"]
    if fenced:
        parts.append(f"its replicas {', '.join(fenced)} stay at priority 0 and refuse every write")
    if missed:
        parts.append(f"NOT reached, still monitoring it: {'; '.join(missed)} — run SENTINEL REMOVE "
                     f"{hold.master_name} there before stopping the old master")
    if unfenced:
        parts.append(f"replicas not fenced: {'; '.join(unfenced)}")
    if removed:
        parts.append(f"to monitor it again: {_hint(removed, bool(conn.password_secret))}")
    journal.update(sentinel_set=None)
    msg = "; ".join(parts)
    log.info(msg)
    return msg


def _remove_monitors(plan: MigrationPlan, hold: SetHold, journal: Journal,
                     log: Log) -> tuple[list[MonitorRecord], list[str]]:
    """SENTINEL REMOVE on every Sentinel of the set, each journaled (with what it monitored) first."""
    name = hold.master_name
    removed = list(hold.removed)
    missed: list[str] = []
    done = {r.sentinel for r in removed}
    for s in hold.sentinels or tuple(sentinel_addresses(plan.source.redis)):
        if s in done:
            continue
        try:
            fields = pairs(sentinel_command(plan, s, "MASTER", name))
            record = monitor_record(s, fields)
            hold = replace(hold, removed=hold.removed + (record,))
            journal.update(sentinel_set=hold)
            sentinel_command(plan, s, "REMOVE", name)
            removed.append(record)
            log.info("Sentinel %s no longer monitors %s", format_address(s), name)
        except redis.ResponseError as exc:  # "No such master with that name": it does not monitor it (any more)
            log.info("Sentinel %s does not monitor %s (%s)", format_address(s), name, exc)
        except (redis.RedisError, OSError) as exc:
            missed.append(f"{format_address(s)} ({type(exc).__name__}: {exc})")
    return removed, missed


def _fence_replicas(plan: MigrationPlan, hold: SetHold, log: Log) -> tuple[list[str], list[str]]:
    """The held replicas refuse writes too (not journaled for undo: the old set is retired for good)."""
    fenced, failed = [], []
    for change in hold.changes:
        node = change.node
        try:
            with node_client(plan, node.host, node.port) as r:
                version = version_tuple(str(r.info("server").get("redis_version", "0")))
                current = {k: v for k, v in config_get_many(r, replica_config_names(version)).items() if v is not None}
                for k, v in refuse_writes_settings(version, current).items():
                    r.config_set(k, v)
            fenced.append(node.address)
        except (redis.RedisError, OSError) as exc:
            failed.append(f"{node.address} ({type(exc).__name__}: {exc})")
    if fenced:
        log.info("old replicas fenced (refuse every write): %s", ", ".join(fenced))
    return fenced, failed


def retire(plan: MigrationPlan, state: QuiesceState, log: Log = logger) -> str:
    """finish-source's engine: the old set decommissioned (a Sentinel set), then the old source stays fenced and
    the maintenance hook goes off (:func:`~elasticache_migrate.source.quiesce.finish`). Returns the summary."""
    retired = decommission(plan, log)
    finished = finish(plan, state, log=log)
    return "; ".join(p for p in (finished, retired) if p)
