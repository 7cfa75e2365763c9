"""RDB findings: engine compatibility, integrity (structure + CRC-64), modules, databases.

Used twice: in preflight on the dump the source already has (read-only), and as the gate between
extract and upload on the fresh snapshot.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import docker.errors
import redis

from elasticache_migrate.errors import MigrationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.rdb import RdbFormatError, RdbHeader, RdbSummary, scan_rdb
from elasticache_migrate.rdb.compat import elasticache_loads, lowest_engine_loading

__all__ = [
    "header_label", "engine_findings", "engine_remedy", "rdb_findings", "inspect_file", "existing_rdb_findings",
    "file_absent",
]

# Why the current dump could not be read: the sources map Docker/file/Redis failures to ExtractError/SourceError;
# what they let through is a socket, Redis or Docker error of its own.
_UNREADABLE = (MigrationError, OSError, redis.RedisError, docker.errors.DockerException)
_ABSENT = (FileNotFoundError, docker.errors.NotFound)


def header_label(h: RdbHeader) -> str:
    """'REDIS0011' / 'VALKEY080' as written in the file."""
    return h.raw[:9].decode("ascii", "replace")


def engine_findings(header: RdbHeader, engine: str, engine_version: str, origin: str) -> list[Finding]:
    """Whether ElastiCache ``engine`` ``engine_version`` can be seeded from an RDB with this header."""
    label = header_label(header)
    if elasticache_loads(engine, engine_version, header.magic, header.version):
        return [Finding("engine", "info", f"{engine} {engine_version} loads {label} ({origin})")]
    return [Finding("engine", "block", f"{engine} {engine_version} cannot load {label} ({origin}): it would end "
                    "in restore-failed", engine_remedy(header.version))]


def engine_remedy(rdb_version: int) -> str:
    """What to choose instead when the target's engine cannot load ``rdb_version`` (as its writer writes it)."""
    low = lowest_engine_loading(rdb_version)
    if low:
        return f"choose target.engine {low[0]} with engine_version {low[1]} or newer"
    return (f"nothing on ElastiCache loads RDB {rdb_version}: snapshot the data through a server that writes RDB ≤ 11 "
            "(e.g. replicate into Valkey 8.1 and BGSAVE there), then seed from that file")


def rdb_findings(summary: RdbSummary, plan: MigrationPlan, origin: str) -> list[Finding]:
    """Findings for a scanned RDB (:class:`elasticache_migrate.rdb.RdbSummary`) against the plan's target."""
    t = plan.target
    out = engine_findings(summary.header, t.engine, t.engine_version, origin)
    if summary.checksum_ok is False:
        out.append(Finding("rdb-integrity", "block", f"{origin}: CRC-64 mismatch (stored "
                           f"{summary.stored_checksum:#018x}, computed {summary.computed_checksum:#018x}): corrupt",
                           "take a new snapshot; check the source's disk"))
    elif summary.checksum_ok is None:
        out.append(Finding("rdb-integrity", "warn", f"{origin} carries no checksum (rdbchecksum no): corruption "
                           "cannot be detected", "CONFIG SET rdbchecksum yes on the source before the window"))
    else:
        out.append(Finding("rdb-integrity", "info", f"{origin}: structure read to the end, CRC-64 verified"))
    if summary.module_types:
        out.append(Finding("modules", "block", f"{origin} holds module types {', '.join(summary.module_types)}",
                           "ElastiCache loads no modules: remove or convert those keys first"))
    if not summary.complete and not summary.module_types:
        out.append(Finding("rdb-integrity", "warn", f"{origin}: not read to the end ({summary.stop_reason})",
                           "the target's own load is the final check"))
    if summary.trailing_bytes:
        out.append(Finding("rdb-integrity", "warn", f"{origin}: {summary.trailing_bytes} bytes after the checksum",
                           "an AOF preamble file? seed only from a plain dump.rdb"))
    other = {db: n for db, n in summary.dbs.items() if db != 0 and n}
    if t.cluster_mode and other:
        out.append(Finding("cluster-mode", "block", f"{origin} has keys outside db0: "
                           + ", ".join(f"db{db}: {n}" for db, n in sorted(other.items())),
                           "cluster mode has only db0: move those keys (or keep cluster mode disabled)"))
    keys = sum(summary.dbs.values())
    used = summary.aux.get("used-mem")
    writer = summary.aux.get("valkey-ver") or summary.aux.get("redis-ver", "?")
    out.append(Finding("rdb", "info", f"{origin}: {summary.size:,} bytes, {keys:,} keys in "
                       f"{len(summary.dbs)} db(s), written by {writer}"
                       + (f", used-mem {int(used):,} bytes" if used and str(used).isdigit() else "")))
    return out


def inspect_file(path: str | Path, plan: MigrationPlan, origin: str) -> tuple[list[Finding], RdbSummary | None]:
    """Scan an RDB file and return its findings (a truncated or malformed file is a blocking finding)."""
    try:
        summary = scan_rdb(path)
    except RdbFormatError as exc:
        return [Finding("rdb-integrity", "block", f"{origin}: {exc}",
                        "the file is truncated or not an RDB: take a new snapshot")], None
    return rdb_findings(summary, plan, origin), summary


def file_absent(exc: BaseException) -> bool:
    """Whether reading the RDB failed because there is no file (yet): by class, or the class it was mapped from."""
    return isinstance(exc, _ABSENT) or isinstance(exc.__cause__, _ABSENT)


def _what(exc: BaseException) -> str:
    """The failure without its remedy (a MigrationError's ``str`` ends with "— what to do: …")."""
    if isinstance(exc, MigrationError):
        return f"[{exc.step}] {exc.message}" if exc.step else exc.message
    return str(exc)


def existing_rdb_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """Read the dump the source already has (read-only) and check it like the real snapshot will be."""
    from elasticache_migrate.staging.chunks import rdb_path_on_server, rdb_source_for

    try:
        path = rdb_path_on_server(plan)
        src = rdb_source_for(plan)
        size, chunks = src.open(path)
    except _UNREADABLE as exc:  # absent file, unreachable engine: a finding either way
        if file_absent(exc):
            return [Finding("rdb", "info", f"the source has no RDB file yet ({_what(exc)}); the "
                            "snapshot is checked after BGSAVE, before upload")]
        return [Finding("rdb", "warn", f"cannot read the source's current RDB: {exc}",
                        "the snapshot is still checked after BGSAVE, before upload")]
    origin = f"current {src.describe(path)}"
    work = plan.workdir
    work.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=work, prefix=".preflight-", suffix=".rdb")
    try:
        with os.fdopen(fd, "wb") as f:
            for block in chunks:
                f.write(block)
        findings, summary = inspect_file(tmp, plan, origin)
    finally:
        os.unlink(tmp)
    if summary is not None:
        facts.rdb_summary, facts.rdb_origin = summary, origin
        if facts.server is not None:  # the engine verdict weighs the dump against the running server (see below)
            findings = [f for f in findings if f.check != "engine"]
    return findings
