"""Local servers in the states tests need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.sample_data import load_sample

__all__ = ["saved_server", "sample_keys"]


def saved_server(binary: Any, tmp_path: Path, name: str, **kw: Any) -> LocalRedisServer:
    """A started server holding 50 keys, saved to its dump.rdb."""
    srv = LocalRedisServer(binary, workdir=tmp_path / name, **kw).start()
    r = srv.client()
    for i in range(50):
        r.set(f"k{i}", f"v{i}")
    r.save()
    r.close()
    return srv


def sample_keys(server: LocalRedisServer) -> int:
    """Write the sample dataset (db 0 and db 1) into ``server``; how many keys it wrote."""
    r, r1 = server.client(), server.client(db=1)
    try:
        return sum(load_sample(r, db1=r1).keys.values())
    finally:
        r.close()
        r1.close()
