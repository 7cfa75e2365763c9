"""Which data path a run takes (pure): from ``staging.transfer``, the source's version and what an earlier run left.

::

    an earlier run's object still holds the unchanged snapshot   → reused      (nothing to do)
    ... only its checked local copy                              → reuploaded  (upload from the copy)
    staging.transfer sync, or auto on a source >= 7.0            → sync        (SYNC straight into S3)
    staging.transfer stream                                      → stream      (bgsave-wait, then one pass)
    staging.transfer staged, or auto on an older source          → staged      (bgsave-wait, extract, upload)
    auto, and the source refuses SYNC (SyncUnavailable)          → staged

All of them write through the one sink (:mod:`elasticache_migrate.staging.sink`).
"""

from __future__ import annotations

from typing import Literal

from elasticache_migrate.source.sync_strategy import transfer_mode
from elasticache_migrate.staging.resume import Reuse
from elasticache_migrate.state import ServerInfo, StagePath

__all__ = ["Transfer", "choose_path", "fallback_path"]

Transfer = Literal["auto", "sync", "stream", "staged"]
_TRANSFERS: dict[str, StagePath] = {"sync": "sync", "stream": "stream", "staged": "staged"}


def choose_path(transfer: Transfer, server: ServerInfo, earlier: Reuse | None) -> StagePath:
    """The path for this run (``auto`` is ``sync`` on a source >= 7.0, ``staged`` before it).

    ``sync`` is kept as asked for any version: the sync step refuses an older source with a clear error.
    """
    if earlier is not None:
        return "reused" if earlier.staged is not None else "reuploaded"
    return _TRANSFERS[transfer_mode(transfer, server)]


def fallback_path(transfer: Transfer) -> StagePath | None:
    """The path after the source refused SYNC: ``staged`` under ``auto``; None (the refusal stands) otherwise."""
    return "staged" if transfer == "auto" else None
