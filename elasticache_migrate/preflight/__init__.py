"""Preflight: read-only checks that refuse a migration that would fail, before anything is changed.

- :mod:`.findings`: a finding (block / warn / info: what was seen, what to do) and the report made of them;
- :mod:`.facts`: what the checks learn and hand on to the later ones;
- :mod:`.checks`: the checks in order and :func:`~.checks.run_checks`;
- :mod:`.source_checks`, :mod:`.rdb_checks`, :mod:`.aws_checks`: the checks, by what they look at;
- :mod:`.sizing`, :mod:`.cluster_safety`: the pure rules behind the sizing and cluster-mode checks.
"""

from __future__ import annotations

__all__: list[str] = []
