"""Preflight on a real Sentinel set (Redis 3.2.6: a master, a replica, three Sentinels): the master found through
Sentinel, the Sentinels and replicas with their versions, an unreachable Sentinel warned, where the RDB file is,
and the app's Sentinel settings (blocked unless the plan switches them all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticache_migrate.preflight.checks import run_checks
from elasticache_migrate.preflight.findings import blocking
from tests.conftest import make_plan, need
from tests.support.outcomes import finding
from tests.support.sentinel import SentinelSet


def _env(tmp_path: Path, sset: SentinelSet) -> Path:
    p = tmp_path / "app.env"
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in sset.sentinels)
    p.write_text(f"APP_ENV=production\nREDIS_URL=redis://127.0.0.1:{sset.nodes[0].port}/0\n"
                 f"REDIS_SENTINELS={hosts}\nREDIS_MASTER_NAME=appmaster\nWORKERS=4\n")
    return p


def test_preflight_reports_the_sentinel_set_and_the_apps_sentinel_settings(tmp_path: Path, moto_endpoint: str,
                                                                           bucket: str) -> None:
    with SentinelSet(need("redis-3.2"), tmp_path / "set") as sset:
        master, replica = sset.master_node(), sset.replica_nodes()[0]
        sset.stop_sentinel(0)
        env = _env(tmp_path, sset)
        common: dict[str, Any] = {"tmp_path": tmp_path, "moto_endpoint": moto_endpoint, "bucket": bucket,
                                  "source_port": master.port,
                                  "source": {"kind": "host", "redis": sset.redis_connection()}}
        plan = make_plan(**common, cutover={"backend": "dotenv", "dotenv_path": str(env)})
        found = run_checks(plan)
        finding(found, "source", "info", f"source 127.0.0.1:{master.port} is redis 3.2.6, resolved through Sentinel")
        finding(found, "sentinel", "info", f"master 'appmaster' is 127.0.0.1:{master.port} (named by Sentinel "
                f"127.0.0.1:{sset.sentinels[1].port}; 2 of 3")
        finding(found, "sentinel", "warn", f"Sentinel 127.0.0.1:{sset.sentinels[0].port}: ConnectionError")
        line = finding(found, "sentinel", "info", f"Sentinel 127.0.0.1:{sset.sentinels[2].port}: redis 3.2.6, quorum 2")
        assert "knows 1 replica(s) and 2 other Sentinel(s)" in line.seen  # it still counts the stopped one
        finding(found, "replicas", "info", f"replica 127.0.0.1:{replica.port}: redis 3.2.6, link online")
        finding(found, "sentinel", "warn", "the RDB is read from this host's disk, where the master")
        left = finding(found, "app-config", "block", "also holds Sentinel settings the plan would leave")
        assert "REDIS_SENTINELS (named like a Sentinel setting)" in left.seen
        assert "REDIS_MASTER_NAME (the Sentinel master name)" in left.seen
        assert "cutover.clear_keys" in left.todo

        plan = make_plan(**common, cutover={"backend": "dotenv", "dotenv_path": str(env),
                                            "clear_keys": ["REDIS_SENTINELS", "REDIS_MASTER_NAME"]})
        found = run_checks(plan)
        finding(found, "app-config", "info", "Sentinel settings REDIS_SENTINELS, REDIS_MASTER_NAME are switched")
        assert not [f for f in blocking(found) if f.check in ("app-config", "sentinel", "source", "replicas")]

        direct = make_plan(**{**common, "source": {"kind": "host", "redis": {"port": master.port}}},
                           cutover={"backend": "none"})
        finding(run_checks(direct), "sentinel", "warn", "Sentinel connection(s) watch this master")
