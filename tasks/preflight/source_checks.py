"""Preflight checks on the source Redis: reachability, version, role, persistence, clients, cluster safety, size."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tasks.compat import rdb_version_written_by
from tasks.connect import server_version, source_client
from tasks.findings import Finding
from tasks.plan import MigrationPlan
from tasks.quiesce import blocking_clients, pause_mode

__all__ = ["source_findings", "version_engine_findings", "cluster_findings", "sizing_findings"]


def _cfg(r: Any, name: str) -> str | None:
    """CONFIG GET one value, None when CONFIG is unavailable (renamed/disabled)."""
    try:
        got = dict(r.config_get(name))
    except Exception:  # noqa: BLE001
        return None
    v = got.get(name, got.get(name.encode()))
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


def source_findings(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The source answers; which server it is; its role, persistence settings and clients."""
    conn = plan.source.redis
    where = f"{conn.host}:{conn.port}"
    if conn.sentinel_master:
        where += f" (Sentinel master {conn.sentinel_master!r})"
    try:
        r = source_client(plan, timeout=10)
        r.ping()
        flavor, version = server_version(r)
        info = r.info()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return [Finding("source", "block", f"cannot reach the source {where}: {type(exc).__name__}: {exc}",
                        "check source.redis (host, port, TLS, sentinel_master) and its password secret")]
    facts.update(source_flavor=flavor, source_version=version, source_info=info, source_client=r)
    v = ".".join(map(str, version))
    addr = r.connection_pool.connection_kwargs
    out = [Finding("source", "info", f"source {addr.get('host')}:{addr.get('port')} is {flavor} {v}"
                   + (f", resolved through Sentinel {conn.host}:{conn.port}" if conn.sentinel_master else ""))]
    role = info.get("role")
    if role in ("slave", "replica"):
        out.append(Finding("source", "block", f"the source is a replica of {info.get('master_host')}:"
                           f"{info.get('master_port')}: pausing it would not stop the master's writes",
                           "point source.redis at the master, or at a Sentinel with source.redis.sentinel_master"))
    if pause_mode(version) == "refuse-writes":
        out.append(Finding("quiesce", "warn", f"{flavor} {v} has no CLIENT PAUSE WRITE: writes will be refused with "
                           "NOREPLICAS (min-slaves-to-write) during the window, apps see errors instead of waiting",
                           "make sure the app is in maintenance mode; CONFIG must not be renamed"))
        if _cfg(r, "min-slaves-to-write") is None:
            out.append(Finding("quiesce", "block", "CONFIG is unavailable on the source (renamed or disabled): "
                               "writes cannot be paused on this version", "allow CONFIG for the migration user"))
    checksum = _cfg(r, "rdbchecksum")
    if checksum == "no":
        out.append(Finding("source", "warn", "rdbchecksum is off: snapshots carry no CRC-64, corruption in transit "
                           "cannot be detected", "CONFIG SET rdbchecksum yes before the window"))
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        out.append(Finding("source", "warn", "the source's last BGSAVE failed (rdb_last_bgsave_status:err)",
                           "check free disk in its `dir` and fork (vm.overcommit_memory=1) before the window"))
    if str(info.get("aof_enabled", 0)) == "1":
        out.append(Finding("source", "info", "AOF is on; the migration snapshots with BGSAVE regardless"))
    save = _cfg(r, "save")
    if save == "":
        out.append(Finding("source", "info", "automatic RDB saves are off (save \"\"); BGSAVE still works"))
    if _cfg(r, "dir") is None and not plan.source.rdb_path:
        out.append(Finding("source", "block", "CONFIG GET dir is refused: the RDB's location is unknown",
                           "set source.rdb_path to the RDB's path"))
    out.extend(_client_findings(plan, r))
    return out


def _client_findings(plan: MigrationPlan, r: Any) -> list[Finding]:
    """Who is connected, by name and library; who would have to leave during the window."""
    try:
        clients = r.client_list()
    except Exception as exc:  # noqa: BLE001
        return [Finding("clients", "warn", f"CLIENT LIST refused: {exc}", "allow CLIENT for the migration user")]
    apps = blocking_clients(clients, plan.migration_id, plan.quiesce.allowed_clients)
    kinds = Counter(f"{c.get('name') or '-'}/{c.get('lib-name') or '?'}" for c in apps)
    listed = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common(8)) or "none"
    sev = "warn" if apps and plan.quiesce.require_no_clients else "info"
    todo = ("during the window these must disconnect (maintenance mode) or be allow-listed in "
            "quiesce.allowed_clients" if sev == "warn" else "")
    return [Finding("clients", sev, f"{len(apps)} application client(s) connected (name/library): {listed}", todo)]


def version_engine_findings(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """Engine compatibility from the source's version, when there is no RDB file to read yet."""
    if "rdb_summary" in facts or "source_version" not in facts:
        return []
    from tasks.compat import engine_loads, lowest_engine_loading

    v = ".".join(map(str, facts["source_version"]))
    rdb = rdb_version_written_by(facts["source_flavor"], v)
    t = plan.target
    if rdb is None:
        return [Finding("engine", "warn", f"unknown RDB version for {facts['source_flavor']} {v}",
                        "the snapshot's header is checked before upload")]
    if rdb >= 80:
        return [Finding("engine", "block", f"{facts['source_flavor']} {v} writes VALKEY080: no ElastiCache engine "
                        "loads it", "snapshot through a server that writes RDB ≤ 11")]
    if engine_loads(t.engine, t.engine_version, rdb):
        return [Finding("engine", "info", f"{t.engine} {t.engine_version} loads RDB {rdb} (what {v} writes)")]
    low = lowest_engine_loading(rdb)
    todo = (f"choose target.engine {low[0]} with engine_version {low[1]} or newer" if low
            else "no ElastiCache engine loads this RDB version")
    return [Finding("engine", "block", f"{t.engine} {t.engine_version} cannot load RDB {rdb} written by "
                    f"{facts['source_flavor']} {v}", todo)]


def cluster_findings(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """Cluster-mode hazards (CROSSSLOT apps, data outside db0), when the target has cluster mode on."""
    if not plan.target.cluster_mode or "source_client" not in facts:
        return []
    from tasks.cluster_safety import cluster_mode_findings

    return list(cluster_mode_findings(facts["source_client"]))


def sizing_findings(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The data plus headroom fits the node type (less reserved memory)."""
    from tasks.sizing import size_findings, used_memory_from, used_memory_from_rdb_aux

    used, source = None, "used_memory"
    if "source_client" in facts:
        used = used_memory_from(facts["source_client"])
    elif "rdb_summary" in facts:
        used, source = used_memory_from_rdb_aux(facts["rdb_summary"].aux), "RDB used-mem"
    if used is None:
        return [Finding("sizing", "warn", "the source's memory use is unknown", "size target.node_type by hand")]
    return list(size_findings(used, plan.target.node_type, source=source))
