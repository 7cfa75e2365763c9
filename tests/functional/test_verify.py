"""verify against two real servers: large collections chunk by chunk, sampling, probes, a source written after
the snapshot. Each difference is planted for real and must be found and named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.source.connection import Endpoint
from elasticache_migrate.state import Snapshot
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.verify.read import CHUNK
from elasticache_migrate.verify.run import verify_endpoints
from tests.conftest import make_plan


@pytest.fixture
def pair(tmp_path: Path, redis70: Any) -> Any:
    a = LocalRedisServer(redis70, workdir=tmp_path / "a").start()
    b = LocalRedisServer(redis70, workdir=tmp_path / "b").start()
    yield a, b
    a.stop()
    b.stop()


def _fill_both(a: Any, b: Any, n: int = 3 * CHUNK + 17) -> None:
    for r in (a.client(), b.client()):
        p = r.pipeline(transaction=False)
        p.rpush("big:list", *[f"e{i}" for i in range(n)])
        p.sadd("big:set", *[f"m{i}" for i in range(n)])
        p.zadd("big:zset", {f"z{i}": i / 3 for i in range(n)})
        p.hset("big:hash", mapping={f"f{i}": f"v{i}" for i in range(n)})
        for i in range(n):
            p.xadd("big:stream", {"n": str(i)}, id=f"{1000 + i}-0")
        p.execute()
        r.xgroup_create("big:stream", "workers", id="0")
        r.xreadgroup("workers", "w1", {"big:stream": ">"}, count=5)
        for i in range(50):
            r.set(f"session:{i}", "s", ex=3600)


def _plan(tmp_path: Path, moto_endpoint: str, port: int, **verify: Any) -> Any:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket="unused", source_port=port,
                     verify=verify or {})


def test_large_collections_equal_are_compared_in_chunks(tmp_path: Path, moto_endpoint: str, pair: Any) -> None:
    a, b = pair
    _fill_both(a, b)
    report = verify_endpoints(_plan(tmp_path, moto_endpoint, a.port), Endpoint("127.0.0.1", b.port))
    assert report.ok, report.mismatches
    assert report.keys_checked == 55 and report.confidence == "all 55 keys compared"


@pytest.mark.parametrize("damage,needle", [
    (lambda r: r.lset("big:list", 2500, "changed"), "list differs within elements 2000..2999"),
    (lambda r: (r.srem("big:set", "m2999"), r.sadd("big:set", "other")), "set members missing on target"),
    (lambda r: r.zadd("big:zset", {"z3000": 9999}), "zset differs within elements"),
    (lambda r: r.hset("big:hash", "f2222", "changed"), "hash fields differ"),
    (lambda r: r.xgroup_setid("big:stream", "workers", id="1002-0"), "consumer groups differ"),
])
def test_a_difference_deep_in_a_large_collection_is_named(tmp_path: Path, moto_endpoint: str, pair: Any,
                                                          damage: Any, needle: str) -> None:
    a, b = pair
    _fill_both(a, b)
    damage(b.client())
    report = verify_endpoints(_plan(tmp_path, moto_endpoint, a.port), Endpoint("127.0.0.1", b.port))
    assert report.mismatch_count == 1
    assert needle in report.mismatches[0].detail


def _fill_small(r: Any, reverse: bool) -> None:
    """3,000 small keys of every kind; ``reverse`` inserts collection members in the opposite order."""
    p = r.pipeline(transaction=False)
    for i in range(600):
        members = [f"m{i}-{j}" for j in range(8)]
        fields = {f"f{j}": f"{i}-{j}" for j in range(6)}
        scores = {m: j / 7 for j, m in enumerate(members)}
        if reverse:
            members.reverse()
            fields = dict(reversed(list(fields.items())))
            scores = dict(reversed(list(scores.items())))
        p.set(f"s:{i}", f"value-{i}")
        p.set(f"t:{i}", f"ttl-{i}", px=3_600_000)
        p.sadd(f"set:{i}", *members)
        p.hset(f"h:{i}", mapping=fields)
        p.zadd(f"z:{i}", scores)
    p.execute()


def test_small_keys_compared_in_bulk_equal_despite_member_order(tmp_path: Path, moto_endpoint: str,
                                                                pair: Any) -> None:
    """Sets and hashes whose members were inserted in another order are equal (hash-table order differs)."""
    a, b = pair
    _fill_small(a.client(), reverse=False)
    _fill_small(b.client(), reverse=True)
    report = verify_endpoints(_plan(tmp_path, moto_endpoint, a.port), Endpoint("127.0.0.1", b.port))
    assert report.ok, report.mismatches
    assert report.keys_checked == 3000


def test_each_difference_among_thousands_of_equal_small_keys_is_named(tmp_path: Path, moto_endpoint: str,
                                                                       pair: Any) -> None:
    """Differences planted in batches of otherwise equal keys: the bulk comparison must not hide one."""
    a, b = pair
    _fill_small(a.client(), reverse=False)
    _fill_small(b.client(), reverse=True)
    r = b.client()
    r.set("s:10", "changed")                          # string value
    r.srem("set:20", "m20-3")                         # a set member missing...
    r.sadd("set:20", "intruder")                      # ...same size
    r.hset("h:30", "f2", "changed")                   # a hash field
    r.zadd("z:40", {"m40-1": 99})                     # a score
    r.pexpire("t:50", 60_000)                         # a TTL beyond the tolerance
    r.persist("t:60")                                 # a TTL lost
    r.expire("s:70", 3600)                            # a TTL gained
    r.delete("s:80")                                  # missing
    r.delete("h:90")
    r.set("h:90", "now a string")                     # another type
    r.set("extra:1", "x")                             # on the target only
    report = verify_endpoints(_plan(tmp_path, moto_endpoint, a.port), Endpoint("127.0.0.1", b.port))
    found = {(m.key, m.kind) for m in report.mismatches}
    assert found == {("s:10", "value"), ("set:20", "value"), ("h:30", "value"), ("z:40", "value"),
                     ("t:50", "ttl"), ("t:60", "ttl"), ("s:70", "ttl"), ("s:80", "missing"), ("h:90", "type"),
                     ("extra:1", "extra")}, report.mismatches


def test_sampling_states_its_confidence_and_still_catches_a_count_gap(tmp_path: Path, moto_endpoint: str,
                                                                      pair: Any) -> None:
    a, b = pair
    for r in (a.client(), b.client()):
        p = r.pipeline(transaction=False)
        for i in range(20_000):
            p.set(f"k{i}", i)
        p.execute()
    plan = _plan(tmp_path, moto_endpoint, a.port, sample_keys=2000)
    report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port))
    assert report.ok and report.sampled and 1900 <= report.keys_checked <= 2000
    assert "with 95 % confidence fewer than 0.15" in report.confidence
    b.client().delete("k1", "k2", "k3")
    report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port))
    assert not report.ok and any("source has 20000 keys, target 19997" in m.detail for m in report.mismatches)


def test_probes_name_what_the_app_needs(tmp_path: Path, moto_endpoint: str, pair: Any) -> None:
    a, b = pair
    _fill_both(a, b)
    b.client().delete("session:7")
    plan = _plan(tmp_path, moto_endpoint, a.port, probes=["session:*", "big:hash", "config:flags"])
    report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port))
    kinds = [(m.kind, m.key) for m in report.mismatches]
    assert ("probe", "session:*") in kinds          # 50 sessions on the source, 49 on the target
    assert ("probe", "config:flags") in kinds       # required key absent
    assert "`session:*`: 50 keys on source, 49 on target" in report.probes


def test_a_write_to_the_source_after_the_snapshot_fails_verify(tmp_path: Path, moto_endpoint: str,
                                                               pair: Any) -> None:
    """The proof that nothing can be lost: the source did not change since the snapshot."""
    a, b = pair
    r = a.client()
    r.set("x", "1")
    r.save()
    info = r.info("persistence")
    snap = Snapshot(last_save_time=int(info["rdb_last_save_time"]), rdb_saves=int(info["rdb_saves"]), seconds=0,
                    changes_since_save=0)
    b.client().set("x", "1")
    plan = _plan(tmp_path, moto_endpoint, a.port)
    report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port), snap)
    assert report.ok and "rdb_changes_since_last_save=0" in report.source_state
    r.set("late-write", "would be lost")
    b.client().set("late-write", "would be lost")   # even if the target happened to get it too
    report = verify_endpoints(plan, Endpoint("127.0.0.1", b.port), snap)
    assert [m.kind for m in report.mismatches] == ["source-changed"]
    assert "rdb_changes_since_last_save=1" in report.mismatches[0].detail
