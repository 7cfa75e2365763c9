"""bgsave-wait: take an RDB snapshot that postdates the quiesce, and wait for it to finish. The engine is
:mod:`elasticache_migrate.source.snapshot`."""

from __future__ import annotations

from prefect import task

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import source_client
from elasticache_migrate.source.snapshot import bgsave, bgsave_finished, poll_delays, wait_until_done
from elasticache_migrate.state import Snapshot, info_int
from tasks.log import run_logger
from tasks.retry import IO_RETRIES

__all__ = ["bgsave_wait",
           # the engine's names, importable from here as before
           "Snapshot", "info_int", "bgsave_finished", "poll_delays", "wait_until_done"]


@task(name="bgsave-wait", **IO_RETRIES)
def bgsave_wait(plan: MigrationPlan, timeout_seconds: float = 3600) -> Snapshot:
    """Run BGSAVE on the (quiesced) source and wait until it has written the RDB; the record is journaled.

    A save already in progress was started before the quiesce, so it is waited out and a new one
    started: the snapshot must postdate the pause.

    Raises:
        SnapshotError: BGSAVE failed, or did not finish within ``timeout_seconds``.
    """
    snap = bgsave(source_client(plan), timeout_seconds, run_logger())
    Journal(plan.workdir).update(snapshot=snap)
    return snap
