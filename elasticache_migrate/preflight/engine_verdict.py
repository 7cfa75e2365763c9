"""The engine verdict: can the target's engine load the snapshot the window will take?

The snapshot is written by the running server (BGSAVE or SYNC) in the format of its version; the dump already on
disk may be older (a server upgraded since its last save) or newer (a file the plan names that this server did not
write). Preflight judges by the stricter of the two — the newer format, which fewer engines load — and says which
one decided, so a stale RDB 9 file on a Redis 7.0 server no longer passes for a 6.2 target and fails after the
pause. Pure: the facts come from the source and current-RDB checks.
"""

from __future__ import annotations

from datetime import datetime, timezone

from elasticache_migrate.preflight.facts import ExpectedRdb
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.rdb_checks import engine_remedy
from elasticache_migrate.rdb import RdbSummary
from elasticache_migrate.rdb.compat import elasticache_loads, magic_of, rdb_version_written_by
from elasticache_migrate.state import ServerInfo

__all__ = ["expected_rdb", "engine_verdict"]


def _saved(summary: RdbSummary) -> str:
    """' saved 2026-11-30 08:12 UTC' from the dump's ``ctime`` aux field, or '' when it has none."""
    ctime = summary.aux.get("ctime", "")
    if not str(ctime).isdigit():
        return ""
    when = datetime.fromtimestamp(int(ctime), tz=timezone.utc)
    return f" saved {when:%Y-%m-%d %H:%M} UTC"


def _label(magic: str, version: int) -> str:
    return f"VALKEY{version:03d}" if magic == "VALKEY" else f"RDB {version}"


def expected_rdb(server: ServerInfo | None, dump: RdbSummary | None, dump_origin: str = "the dump on disk",
                 ) -> ExpectedRdb | None:
    """The RDB the snapshot will be: the stricter of what ``server`` writes and the ``dump`` on disk.

    Args:
        server: The running source, None when it did not answer.
        dump: The source's current dump, None when there is none (or it could not be read).
        dump_origin: Where the dump was read, for the words.

    Returns:
        None when neither is known; otherwise the header and why it was chosen ("the running server (redis 7.0.15)
        writes RDB 10; the dump on disk is RDB 9 saved …, older than the server").
    """
    written = rdb_version_written_by(server.flavor, server.dotted) if server is not None else None
    if dump is None:
        if server is None or written is None:
            return None
        return ExpectedRdb(magic_of(written), written, f"what the running server ({server}) writes; there is no "
                           "dump on disk to compare")
    h = dump.header
    on_disk = f"{dump_origin} is {_label(h.magic, h.version)}{_saved(dump)}"
    if server is None:
        return ExpectedRdb(h.magic, h.version, f"{on_disk}; the source did not answer, so what its server writes "
                           "is unknown")
    if written is None:
        return ExpectedRdb(h.magic, h.version, f"{on_disk}; no RDB version is known for {server}")
    runs = f"the running server ({server}) writes {_label(magic_of(written), written)}"
    if written > h.version:
        return ExpectedRdb(magic_of(written), written, f"{runs}; {on_disk}, older than the server (saved before "
                           "an upgrade?): the snapshot will be the server's format")
    if written < h.version:
        return ExpectedRdb(h.magic, h.version, f"{on_disk}, newer than the {_label(magic_of(written), written)} the "
                           f"running server ({server}) writes: this server did not write it (is source.rdb_path "
                           "right?); judged by the stricter, the file")
    return ExpectedRdb(h.magic, h.version, f"{runs}, as {on_disk}")


def engine_verdict(expected: ExpectedRdb, engine: str, engine_version: str) -> Finding:
    """Whether ElastiCache ``engine`` ``engine_version`` loads the snapshot `expected_rdb` foresaw."""
    if elasticache_loads(engine, engine_version, expected.magic, expected.version):
        return Finding("engine", "info", f"{engine} {engine_version} loads {expected.label} ({expected.why})")
    return Finding("engine", "block", f"{engine} {engine_version} cannot load {expected.label} ({expected.why}): "
                   "the snapshot taken in the window would end in restore-failed, after the source was paused",
                   engine_remedy(expected.version))
