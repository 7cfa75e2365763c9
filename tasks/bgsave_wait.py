"""bgsave-wait: take an RDB snapshot that postdates the quiesce, and wait for it to finish. The engine is
:mod:`elasticache_migrate.source.snapshot`."""

from __future__ import annotations

from prefect import get_run_logger, task

from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import source_client
from elasticache_migrate.source.snapshot import bgsave
from elasticache_migrate.state import Snapshot
from tasks.retry import IO_RETRIES

__all__ = ["bgsave_wait"]


@task(name="bgsave-wait", **IO_RETRIES)
def bgsave_wait(plan: MigrationPlan, timeout_seconds: float = 3600) -> Snapshot:
    """Run BGSAVE on the (quiesced) source and wait until it has written the RDB; the record is journaled.

    A save already in progress was started before the quiesce, so it is waited out and a new one
    started: the snapshot must postdate the pause.

    Raises:
        SnapshotError: BGSAVE failed, or did not finish within ``timeout_seconds``.
    """
    snap = bgsave(source_client(plan), timeout_seconds, get_run_logger())
    Journal(plan.workdir).update(snapshot=snap)
    return snap
