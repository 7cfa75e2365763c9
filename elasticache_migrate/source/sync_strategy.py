"""The SYNC transfer's decisions and the source config it changes meanwhile: which data path a run takes
(:func:`transfer_mode`), whether the plan's user may run SYNC (:func:`sync_permission`), whether a BGSAVE runs
first and what config is changed for the transfer (:func:`sync_strategy`, :func:`tune_config`) and put back
(:func:`restore_sync_config`, also after a crash), whether the source restarted since its pause
(:func:`restarted_since_pause`), and the snapshot record the transfer leaves (:func:`synced_snapshot`).

Why these decisions (the automatic save that would void verify's proof, the diskless delay) is told, with the
measurements behind it, in :mod:`elasticache_migrate.source.replication`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from elasticache_migrate.errors import SnapshotError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.config import config_get_many, text
from elasticache_migrate.source.connection import source_client
from elasticache_migrate.source.sync_protocol import SYNC_MIN_VERSION
from elasticache_migrate.state import QuiesceState, ServerInfo, Snapshot, SyncSource, info_int

__all__ = [
    "SYNC_CONFIG",
    "SyncStrategy",
    "read_sync_config",
    "restarted_since_pause",
    "restore_sync_config",
    "sync_permission",
    "sync_strategy",
    "synced_snapshot",
    "transfer_mode",
    "tune_config",
]

SYNC_CONFIG = ("repl-diskless-sync", "repl-diskless-sync-delay", "save")


def transfer_mode(setting: str, server: ServerInfo) -> str:
    """The data path for this run: ``auto`` is ``sync`` on a source >= 7.0 (rdb-only), ``staged`` before it.

    ``sync`` is kept as asked for any version; the task refuses an older source with a clear error.
    """
    if setting != "auto":
        return setting
    return "sync" if server.version >= SYNC_MIN_VERSION else "staged"


@dataclass(frozen=True)
class SyncStrategy:
    """How to take the snapshot through SYNC (see the module docstring)."""

    at_risk: bool                                       # a diskless snapshot could be voided by an automatic save
    presave: bool                                       # so BGSAVE first (the master cannot be asked for disk-based)
    tune: dict[str, str] = field(default_factory=dict)  # CONFIG SET for the transfer, restored once it starts
    why: str = ""


def sync_strategy(changes: int, config: Mapping[str, str | None]) -> SyncStrategy:
    """Decide the CONFIG tuning (and a presave) from the source's ``rdb_changes_since_last_save`` and config.

    ``config`` holds :data:`SYNC_CONFIG` as CONFIG GET returned them, None for what could not be read.

    - No save rules (``save ""``), or no change since the last save (rules need one, and writes are paused): the
      master streams diskless; ``repl-diskless-sync-delay`` is set to 0 for it.
    - Save rules and changes, and a diskless master: ``repl-diskless-sync no`` for the transfer, so the master's
      SYNC is its own BGSAVE (the counter reset, LASTSAVE moved, as bgsave-wait leaves them), streamed once written.
      Slower (writing and uploading do not overlap) but verify's proof holds. If that CONFIG SET is refused, the
      task runs a BGSAVE first instead (``presave``).
    - CONFIG unavailable: rules and framing unknown; with changes, a BGSAVE first.
    """
    diskless = {"yes": True, "no": False}.get(str(config.get("repl-diskless-sync")))
    save = config.get("save")
    at_risk = changes > 0 and save != "" and diskless is not False
    tune: dict[str, str] = {}
    why = ""
    if at_risk:
        rules = f"save rules {save!r}" if save is not None else "save rules unknown (CONFIG unavailable)"
        why = (f"{changes} change(s) since the source's last save and {rules}: an automatic save after a diskless "
               "snapshot would void verify's proof that no write came after it, so ")
        if diskless:
            tune["repl-diskless-sync"] = "no"
            why += "the master is asked for a disk-based SYNC (its own BGSAVE, streamed once written)"
        else:
            why += "a BGSAVE runs first"
    elif diskless and config.get("repl-diskless-sync-delay") not in (None, "0"):
        tune["repl-diskless-sync-delay"] = "0"
    return SyncStrategy(at_risk=at_risk, presave=at_risk and diskless is None, tune=tune, why=why)


def restarted_since_pause(quiesced: QuiesceState | None, server: Mapping[str, Any], seen: SyncSource | None,
                          now: float) -> str | None:
    """Why the source has evidently restarted since quiesce paused its writes (the pause died with the process), or
    None. ``quiesced`` is quiesce's journal entry, ``server`` INFO server now, ``seen`` what an earlier attempt of
    this run recorded (``{"paused_at", "run_id"}``). A restart is seen by a new run_id since that attempt, or
    by an uptime shorter than the time since the pause (2 s of slack for clocks and rounding)."""
    if not quiesced:
        return None
    paused_at, run_id = quiesced.paused_at, str(server.get("run_id", ""))
    if seen and seen.paused_at == paused_at and seen.run_id not in (None, run_id):
        return f"its run_id changed since this run's first look ({str(seen.run_id)[:8]}… → {run_id[:8]}…)"
    uptime = int(server.get("uptime_in_seconds", 1 << 62))
    if uptime < now - paused_at - 2:
        return f"it has been up {uptime}s, writes were paused {now - paused_at:.0f}s ago"
    return None


def synced_snapshot(framing: str, base: Snapshot, after: Mapping[str, Any], seconds: float) -> Snapshot:
    """The snapshot record verify and resume compare the source against, after the transfer.

    ``base`` is the record from before SYNC (the presave's, or INFO persistence then); ``after`` is INFO
    persistence once the payload was read. A disk-based transfer was the master's own BGSAVE: recorded like
    bgsave-wait's. A diskless one changed no counter: ``base`` still holds, if nothing saved meanwhile.

    Raises:
        SnapshotError: (retryable) a save ran during the transfer, or the disk-based one left no trace.
    """
    saves, lastsave = info_int(after, "rdb_saves"), int(after.get("rdb_last_save_time", 0))
    changes = int(after.get("rdb_changes_since_last_save", 0))
    if framing == "disk":
        if saves is not None and base.rdb_saves is not None and saves <= base.rdb_saves:
            raise SnapshotError("the source sent a disk-based RDB but INFO shows no new save",
                                remedy="re-run; if it persists set staging.transfer: staged", step="sync-upload",
                                retryable=True)
        return Snapshot.from_info(after, seconds)
    moved = lastsave != base.last_save_time or (saves is not None and base.rdb_saves is not None
                                                and saves != base.rdb_saves)
    if moved or changes != base.changes_since_save:
        raise SnapshotError(f"the source saved or changed during the transfer (rdb_saves {base.rdb_saves} → {saves}, "
                            f"changes since last save {base.changes_since_save} → {changes})",
                            remedy="another client's BGSAVE or a replica's sync ran meanwhile: the task takes the "
                            "snapshot again", step="sync-upload", retryable=True)
    return replace(base, seconds=round(seconds, 3))


def sync_permission(r: redis.Redis, username: str | None) -> tuple[bool | None, str]:
    """Whether the plan's user may run REPLCONF and SYNC, by ``ACL DRYRUN`` (7.0+): (True | False | None, why).

    None when it cannot be told (DRYRUN itself not granted): SYNC's own answer will say.
    """
    user = username or "default"
    for cmd in (("REPLCONF", "capa", "eof"), ("SYNC",)):
        try:
            answer = text(r.execute_command("ACL", "DRYRUN", user, *cmd))  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:  # the server's refusal, classified by its text
            said = str(exc)
            if "not found" in said.lower():  # DRYRUN's answer for a renamed/disabled command
                return False, f"{cmd[0]} is not available on the source ({said})"
            return None, f"ACL DRYRUN is not available to {user!r} ({said})"
        if answer != "OK":
            return False, answer
    return True, f"ACL user {user!r} may run REPLCONF and SYNC"


def read_sync_config(r: redis.Redis) -> dict[str, str | None]:
    """:data:`SYNC_CONFIG` as CONFIG GET reports them; None for each when CONFIG is renamed or not granted."""
    return config_get_many(r, SYNC_CONFIG)


def tune_config(plan: MigrationPlan, r: redis.Redis, tune: dict[str, str], log: Log = logger) -> dict[str, str]:
    """CONFIG SET ``tune`` for the transfer, the values it replaces journaled first; returns those values.

    A refusal (CONFIG SET not granted) is logged and the transfer goes on untuned.
    """
    if not tune:
        return {}
    current = read_sync_config(r)
    saved = {k: str(current[k]) for k in tune if current.get(k) is not None}  # never set what cannot be put back
    if not saved:
        return {}
    journal = Journal(plan.workdir)
    earlier = journal.read().sync_config or {}
    journal.update(sync_config={**saved, **earlier})  # a crashed run's originals win
    try:
        for k in saved:
            r.config_set(k, tune[k])
    except redis.ResponseError as exc:  # not granted: handled by the caller (slower, or a BGSAVE first)
        log.warning("CONFIG SET %s refused (%s): going on without it", " ".join(f"{k} {v}" for k, v in tune.items()),
                    exc)
        journal.update(sync_config=earlier or None)  # nothing was changed
        return {}
    log.info("for the transfer: CONFIG SET %s (was %s; put back as soon as the master answers SYNC)",
             " ".join(f"{k} {v}" for k, v in tune.items()), saved)
    return saved


def restore_sync_config(plan: MigrationPlan, r: redis.Redis | None = None, log: Log = logger) -> dict[str, str]:
    """Put back what :func:`tune_config` changed (also after a crash: it is in the journal); returns it."""
    journal = Journal(plan.workdir)
    saved = journal.read().sync_config or {}
    if not saved:
        return {}
    if r is None:
        r = source_client(plan)
    for k, v in saved.items():
        r.config_set(k, v)
    journal.update(sync_config=None)
    log.info("source config restored: %s", " ".join(f"{k} {v}" for k, v in saved.items()))
    return dict(saved)
