"""Issue 12's field case end to end: a Redis Sentinel set (a master, a replica, three Sentinels) of Redis 3.2.6 and
of 7.0.15, migrated through ``source.redis.sentinel_master`` to a rehearsal target, with an app that reads
``REDIS_SENTINELS`` + ``REDIS_MASTER_NAME`` (and ``REDIS_URL`` when they are absent).

A plan-only run (with the plan's first Sentinel down) reports the master found through Sentinel, the Sentinels and
the replica; the full run verifies every key on the target and switches the app's config: ``REDIS_URL`` to the
target, the Sentinel settings removed in the same rewrite (``cutover.clear_keys``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.sample_data import load_sample
from flows.migrate import migrate_redis
from tests.conftest import make_plan, need
from tests.support.outcomes import migrated, preflight_report
from tests.support.sentinel import SentinelSet

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.mark.parametrize("version", ["redis-3.2", "redis-7.0"])
def test_sentinel_set_plan_only_then_rehearsal_switches_the_sentinel_aware_app(
        tmp_path: Path, moto_endpoint: str, bucket: str, version: str) -> None:
    need("redis-7.0")  # the rehearsal target
    with SentinelSet(need(version), tmp_path / "set") as sset:
        master = sset.master_node()
        r = master.client()
        stats = load_sample(r)
        r.close()  # the "app" disconnects: quiesce waits for application clients to leave
        env = tmp_path / "app.env"
        sentinels = ",".join(f"127.0.0.1:{s.port}" for s in sset.sentinels)
        env.write_text(f"APP_ENV=production\nREDIS_SENTINELS={sentinels}\nREDIS_MASTER_NAME=appmaster\n"
                       f"REDIS_URL=redis://127.0.0.1:{master.port}/0\nWORKERS=4\n")
        before = env.read_bytes()
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=master.port,
                         source={"kind": "host", "redis": sset.redis_connection()},
                         cutover={"backend": "dotenv", "dotenv_path": str(env),
                                  "clear_keys": ["REDIS_SENTINELS", "REDIS_MASTER_NAME"]})

        sset.stop_sentinel(0)
        report = preflight_report(migrate_redis(plan, plan_only=True))
        lines = "\n".join(f"{f.severity} {f.check}: {f.seen}" for f in report.findings)
        assert not [f for f in report.findings if f.severity == "block"]
        assert f"info sentinel: master 'appmaster' is 127.0.0.1:{master.port}" in lines
        assert f"warn sentinel: Sentinel 127.0.0.1:{sset.sentinels[0].port}: ConnectionError" in lines
        assert f"Sentinel 127.0.0.1:{sset.sentinels[1].port}: redis {sset.binary.version}, quorum 2" in lines
        assert f"replica 127.0.0.1:{sset.replica_nodes()[0].port}: redis {sset.binary.version}, link online" in lines
        assert "Sentinel settings REDIS_SENTINELS, REDIS_MASTER_NAME are switched with REDIS_URL" in lines
        assert env.read_bytes() == before  # plan-only changes nothing
        sset.start_sentinel(0)

        try:
            result = migrated(migrate_redis(plan))
            assert result.keys_verified == sum(stats.keys.values())
            assert result.dbs[0] == (stats.keys[0], stats.keys[0])
            text = env.read_text()
            assert text == (f"APP_ENV=production\nREDIS_URL=redis://127.0.0.1:{result.endpoint.port}/0\n"
                            "WORKERS=4\n")
        finally:
            stop_rehearsal_target(plan.workdir)
