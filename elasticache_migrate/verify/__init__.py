"""Proof that the target holds what the source holds, before the cutover (every key, or a sample with its
confidence) and after it (the config reads back and the endpoint still serves the verified data).

:mod:`.compare` (one key's states and their difference, pure), :mod:`.read` (batched reads over a bare RESP
connection, digests, chunked comparison of large collections), :mod:`.run` (a whole keyspace, sampling,
probes, the source unchanged since the snapshot), :mod:`.report` (the report and its markdown/table),
:mod:`.cutover` (the check after the switch).
"""

from __future__ import annotations

from elasticache_migrate.verify.compare import KeyState, Mismatch, compare_key
from elasticache_migrate.verify.read import CHUNK
from elasticache_migrate.verify.report import VerifyReport, report_markdown
from elasticache_migrate.verify.run import verify_endpoints

__all__ = ["CHUNK", "KeyState", "Mismatch", "VerifyReport", "compare_key", "report_markdown", "verify_endpoints"]
