"""The source's RDB snapshot by BGSAVE: started after the quiesce, and waited for until it is written.

A save already in progress was started before the quiesce, so it is waited out and a new one started: the
snapshot must postdate the pause. INFO persistence tells when ours is done: ``rdb_saves`` grew (7.0+), or
``rdb_last_save_time`` (1 s resolution) moved past its value before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import redis

from elasticache_migrate.errors import SnapshotError, SourceError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.source.config import text
from elasticache_migrate.source.connection import redis_errors
from elasticache_migrate.state import Snapshot, info_int

__all__ = ["Snapshot", "bgsave", "bgsave_finished", "poll_delays", "wait_until_done"]


def bgsave_finished(before: Mapping[str, Any], info: Mapping[str, Any]) -> bool:
    """Whether the BGSAVE we started after ``before`` (INFO persistence) has completed.

    A save is ours once ``rdb_saves`` grew (7.0+) or ``rdb_last_save_time`` moved past the value before
    it, and no save is in progress.

    Raises:
        SnapshotError: the save ended with ``rdb_last_bgsave_status:err``.
    """
    if info_int(info, "rdb_bgsave_in_progress"):
        return False
    # Our BGSAVE forked before this is called, so a finished save's status is ours.
    if str(info.get("rdb_last_bgsave_status", "ok")) != "ok":
        raise SnapshotError(
            "BGSAVE failed on the source (rdb_last_bgsave_status:err)",
            remedy="read the source's log: usually no disk space in `dir` or fork failed (vm.overcommit_memory=1, "
            "free memory); fix it and re-run",
            step="bgsave-wait",
        )
    saves_before, saves_now = info_int(before, "rdb_saves"), info_int(info, "rdb_saves")
    if saves_before is not None and saves_now is not None:
        return saves_now > saves_before
    newer = (info_int(info, "rdb_last_save_time") or 0) > (info_int(before, "rdb_last_save_time") or 0)
    return newer


def poll_delays(start: float = 0.05, cap: float = 0.25) -> Iterator[float]:
    """Poll intervals: fast at first (small datasets finish in ms), then every ``cap`` seconds (INFO is cheap;
    a coarse poll would add up to its interval to every window)."""
    d = start
    while True:
        yield d
        d = min(cap, d * 1.5)


def wait_until_done(r: redis.Redis, field: str, deadline: float, what: str) -> None:
    """Wait until INFO persistence ``field`` (a save or an AOF rewrite in progress) drops to 0.

    Raises:
        SnapshotError: still in progress at ``deadline`` (``time.monotonic()``).
    """
    for delay in poll_delays():
        if not info_int(r.info("persistence"), field):
            return
        if time.monotonic() > deadline:
            raise SnapshotError(f"{what} never finished", step="bgsave-wait")
        time.sleep(delay)


def bgsave(r: redis.Redis, timeout_seconds: float = 3600, log: Log = logger) -> Snapshot:
    """Run BGSAVE on the (quiesced) source ``r`` and wait until it has written the RDB; its record.

    Raises:
        SnapshotError: BGSAVE failed, or did not finish within ``timeout_seconds``.
        SourceError: the source could not be reached (see ``redis_errors``).
    """
    t0 = time.monotonic()
    deadline = t0 + timeout_seconds
    with redis_errors("bgsave-wait", SourceError, "source"):
        while True:
            wait_until_done(r, "rdb_bgsave_in_progress", deadline, "a background save")
            before = r.info("persistence")
            # LASTSAVE has 1 s resolution: make sure ours can be told from one in this same second.
            if info_int(before, "rdb_saves") is None and int(r.time()[0]) <= int(before["rdb_last_save_time"]):
                time.sleep(1.05)
            try:
                reply = r.execute_command("BGSAVE")  # type: ignore[no-untyped-call]
            except redis.ResponseError as exc:  # the server's refusal, classified by its text
                said = str(exc)
                if "already in progress" in said:
                    log.info("a background save was already running (started before the pause); waiting for it")
                    continue
                if "rewriting in progress" in said or "AOF" in said:
                    log.info("an AOF rewrite is running; waiting for it before BGSAVE")
                    wait_until_done(r, "aof_rewrite_in_progress", deadline, "an AOF rewrite")
                    continue
                raise
            log.info("BGSAVE: %s", text(reply))
            break
        for delay in poll_delays():
            info = r.info("persistence")
            if bgsave_finished(before, info):
                break
            if time.monotonic() > deadline:
                raise SnapshotError(f"BGSAVE did not finish within {timeout_seconds:.0f}s",
                                    remedy="a very large dataset or slow disk: raise the timeout, check the "
                                    "source's disk", step="bgsave-wait")
            time.sleep(delay)
    snap = Snapshot.from_info(info, time.monotonic() - t0)
    log.info("snapshot written in %.2fs (LASTSAVE %s, changes since: %s)", snap.seconds, snap.last_save_time,
             snap.changes_since_save)
    return snap
