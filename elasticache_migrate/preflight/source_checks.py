"""Preflight checks on the source Redis: reachability, version, role, persistence, clients, cluster safety, size."""

from __future__ import annotations

from collections import Counter

import redis

from elasticache_migrate.errors import MigrationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.cluster_safety import cluster_mode_findings
from elasticache_migrate.preflight.engine_verdict import engine_verdict, expected_rdb
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.sizing import size_findings, used_memory_from, used_memory_from_rdb_aux
from elasticache_migrate.preflight.window_checks import window_findings
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.connection import server_info, source_client
from elasticache_migrate.source.quiesce import blocking_clients
from elasticache_migrate.source.sync_protocol import SYNC_MIN_VERSION
from elasticache_migrate.source.sync_strategy import read_sync_config, sync_permission, sync_strategy, transfer_mode

__all__ = ["source_findings", "sync_findings", "version_engine_findings", "cluster_findings", "sizing_findings"]

# Reaching the source: redis-py's errors (refused, timed out, auth, Sentinel without a master), socket/TLS errors
# it lets through, and the plan's own (a password secret that is not there).
_UNREACHABLE = (redis.RedisError, OSError, MigrationError)


def source_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The source answers; which server it is; its role, persistence settings and clients."""
    conn = plan.source.redis
    where = f"{conn.host}:{conn.port}"
    if conn.sentinel_master:
        where += f" (Sentinel master {conn.sentinel_master!r})"
    try:
        r = source_client(plan, timeout=10)
        r.ping()
        server = server_info(r)
        info = dict(r.info())
    except _UNREACHABLE as exc:  # the failure is the finding
        return [Finding("source", "block", f"cannot reach the source {where}: {type(exc).__name__}: {exc}",
                        "check source.redis (host, port, TLS, sentinel_master, sentinels) and its password secrets")]
    facts.server, facts.info, facts.client = server, info, r
    flavor, v = server.flavor, server.dotted
    addr = r.connection_pool.connection_kwargs
    out = [Finding("source", "info", f"source {addr.get('host')}:{addr.get('port')} is {flavor} {v}"
                   + (f", resolved through Sentinel (master {conn.sentinel_master!r})" if conn.sentinel_master
                      else ""))]
    role = info.get("role")
    if role in ("slave", "replica"):
        out.append(Finding("source", "block", f"the source is a replica of {info.get('master_host')}:"
                           f"{info.get('master_port')}: pausing it would not stop the master's writes",
                           "point source.redis at the master, or at a Sentinel with source.redis.sentinel_master"))
    out += window_findings(plan, r, server)  # fence: block vs refuse during the window, CONFIG SET for the fence
    checksum = config_get(r, "rdbchecksum")
    if checksum == "no":
        out.append(Finding("source", "warn", "rdbchecksum is off: snapshots carry no CRC-64, corruption in transit "
                           "cannot be detected", "CONFIG SET rdbchecksum yes before the window"))
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        out.append(Finding("source", "warn", "the source's last BGSAVE failed (rdb_last_bgsave_status:err)",
                           "check free disk in its `dir` and fork (vm.overcommit_memory=1) before the window"))
    if str(info.get("aof_enabled", 0)) == "1":
        out.append(Finding("source", "info", "AOF is on; the migration snapshots with BGSAVE regardless"))
    save = config_get(r, "save")
    if save == "":
        out.append(Finding("source", "info", "automatic RDB saves are off (save \"\"); BGSAVE still works"))
    if config_get(r, "dir") is None and not plan.source.rdb_path:
        mode = transfer_mode(plan.staging.transfer, server)
        if mode != "sync":
            out.append(Finding("source", "block", "CONFIG GET dir is refused: the RDB's location is unknown",
                               "set source.rdb_path to the RDB's path"))
        elif plan.staging.transfer == "auto":
            out.append(Finding("source", "warn", "CONFIG GET dir is refused: the RDB's location is unknown, which "
                               "matters only if the source refuses SYNC (auto then reads the RDB file)",
                               "set source.rdb_path to the RDB's path"))
    out.extend(_client_findings(plan, r))
    return out


def sync_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The sync transfer (staging.transfer sync or auto): can this source serve SYNC to the plan's user, and how."""
    wanted = plan.staging.transfer
    if wanted not in ("auto", "sync") or facts.server is None or facts.client is None:
        return []
    r, user = facts.client, plan.source.redis.username or "default"
    server = str(facts.server)
    staged = "BGSAVE, then the RDB file is read from the container/host and uploaded (staged)"
    if facts.server.version < SYNC_MIN_VERSION:
        if wanted == "sync":
            return [Finding("sync", "block", f"staging.transfer sync needs a source >= 7.0 (REPLCONF rdb-only); "
                            f"this is {server}", "set staging.transfer: auto (or staged)")]
        return [Finding("sync", "info", f"{server} is older than 7.0: auto takes the snapshot with {staged}")]
    grant = f"ACL SETUSER {user} +replconf +sync on the source"
    allowed, why = sync_permission(r, plan.source.redis.username)
    if allowed is False and wanted == "sync":
        return [Finding("sync", "block", f"the snapshot cannot be read over SYNC: {why}",
                        f"{grant}, or set staging.transfer: staged")]
    if allowed is False:
        return [Finding("sync", "warn", f"auto will fall back to {staged}: {why}",
                        f"to stream the snapshot straight into S3 instead (faster, no Docker or file access): {grant}")]
    out = [Finding("sync", "info", f"the snapshot is read over SYNC and uploaded as {server} writes it ({why})")]
    if allowed is None:
        out = [Finding("sync", "warn", f"cannot tell whether {user!r} may run SYNC: {why}",
                       f"{grant}; if it is refused, " + ("auto falls back to the staged path" if wanted == "auto"
                                                          else "the run fails before anything is uploaded"))]
    config = read_sync_config(r)
    if config["repl-diskless-sync"] is None:
        out.append(Finding("sync", "warn", "CONFIG is unavailable (renamed or not granted): repl-diskless-sync-delay "
                           "cannot be lowered for the transfer (the master waits it before forking, 5 s by default), "
                           "and with writes since the last save a BGSAVE runs first (save rules unknown)",
                           "allow CONFIG GET/SET for the migration user to save that time"))
    elif config["repl-diskless-sync"] == "no":
        out.append(Finding("sync", "info", "the source syncs disk-based (repl-diskless-sync no): its SYNC is a BGSAVE "
                           "sent once written, so writing and uploading do not overlap"))
    else:
        changes = int(facts.info.get("rdb_changes_since_last_save", 0))
        strategy = sync_strategy(changes, config)
        if strategy.at_risk:
            out.append(Finding("sync", "info", f"as things stand: {strategy.why}; writing and uploading then do not "
                               "overlap", "none needed; a source without writes since its last save (or without "
                               "save rules) is streamed diskless, as it writes the RDB"))
        else:
            out.append(Finding("sync", "info", f"diskless: the RDB is uploaded as the source writes it; "
                               f"repl-diskless-sync-delay {config['repl-diskless-sync-delay']}s is set to 0 for the "
                               "transfer and put back as soon as the master forks"))
    return out


def _client_findings(plan: MigrationPlan, r: redis.Redis) -> list[Finding]:
    """Who is connected, by name and library; who would have to leave during the window."""
    try:
        clients = r.client_list()
    except redis.RedisError as exc:  # NOPERM, renamed CLIENT, or the connection lost
        return [Finding("clients", "warn", f"CLIENT LIST refused: {exc}", "allow CLIENT for the migration user")]
    apps = blocking_clients(clients, plan.migration_id, plan.quiesce.allowed_clients)
    kinds = Counter(f"{c.get('name') or '-'}/{c.get('lib-name') or '?'}" for c in apps)
    listed = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common(8)) or "none"
    sev = "warn" if apps and plan.quiesce.require_no_clients else "info"
    todo = ("during the window these must disconnect (maintenance mode) or be allow-listed in "
            "quiesce.allowed_clients" if sev == "warn" else "")
    return [Finding("clients", sev, f"{len(apps)} application client(s) connected (name/library): {listed}", todo)]


def version_engine_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The engine verdict by the stricter of the dump on disk and what the running server writes (see
    :mod:`~elasticache_migrate.preflight.engine_verdict`); it hands that RDB on to the rehearsal-binary check."""
    expected = expected_rdb(facts.server, facts.rdb_summary, facts.rdb_origin or "the dump on disk")
    facts.expected_rdb = expected
    if facts.server is None:
        return []  # the dump's own engine finding stands (the current-RDB check gave it)
    if expected is None:
        return [Finding("engine", "warn", f"unknown RDB version for {facts.server}",
                        "the snapshot's header is checked before upload")]
    return [engine_verdict(expected, plan.target.engine, plan.target.engine_version)]


def cluster_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """Cluster-mode hazards (CROSSSLOT apps, data outside db0), when the target has cluster mode on."""
    if not plan.target.cluster_mode or facts.client is None:
        return []
    return list(cluster_mode_findings(facts.client))


def sizing_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The data plus headroom fits the node type (less reserved memory)."""
    used: int | None = None
    source = "used_memory"
    if facts.client is not None:
        used = used_memory_from(facts.client)
    elif facts.rdb_summary is not None:
        used, source = used_memory_from_rdb_aux(facts.rdb_summary.aux), "RDB used-mem"
    if used is None:
        return [Finding("sizing", "warn", "the source's memory use is unknown", "size target.node_type by hand")]
    return list(size_findings(used, plan.target.node_type, source=source))
