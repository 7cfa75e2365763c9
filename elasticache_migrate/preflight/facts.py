"""What the preflight checks learn and hand on to the checks after them (in :data:`~.checks.CHECKS` order).

The source check fills in which server answers, its INFO and the client; the container check whether the
container exists; the current-RDB check the dump's summary; the bucket check its object ownership. A check that
needs a fact another check could not learn skips (returns no finding) or says what it cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from elasticache_migrate.rdb import RdbSummary
from elasticache_migrate.state import ServerInfo

__all__ = ["ExpectedRdb", "PreflightFacts"]


@dataclass(frozen=True)
class ExpectedRdb:
    """The RDB the snapshot will be, as far as preflight can tell: the stricter of the dump on disk and what the
    running server writes.

    Attributes:
        magic: ``"REDIS"`` or ``"VALKEY"``.
        version: The header's version (``VALKEY080`` -> 80).
        why: Which of the two decided, in words (goes into the findings).
    """

    magic: str
    version: int
    why: str

    @property
    def label(self) -> str:
        """``RDB 10`` or ``VALKEY080``."""
        return f"VALKEY{self.version:03d}" if self.magic == "VALKEY" else f"RDB {self.version}"


@dataclass
class PreflightFacts:
    """Facts shared by one preflight run's checks (mutable: each check adds what it learned)."""

    server: ServerInfo | None = None            # the source answered: which server it is
    info: dict[str, Any] = field(default_factory=dict)  # the source's INFO (all sections), as redis-py parses it
    client: redis.Redis | None = None           # a client to the source (the master, through Sentinel if named)
    container_ok: bool = False                  # kind=docker: the container exists on the engine
    rdb_summary: RdbSummary | None = None       # the source's current dump, read to the end
    rdb_origin: str = ""                        # where that dump was read ("current /data/dump.rdb on …")
    expected_rdb: ExpectedRdb | None = None     # the RDB the snapshot will be (the engine verdict's basis)
    bucket_ownership: str | None = None         # the staging bucket's Object Ownership setting
