"""The online applier on real servers: a source's real replication stream, captured, applied to a fresh target,
every key then compared (type, value, TTL). Sources 3.2 (relative TTLs), 6.2 and 7.0 (absolute TTLs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from elasticache_migrate.errors import CatchUpError
from elasticache_migrate.online.apply import Applier
from elasticache_migrate.online.stream import TargetCaps, units
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import need
from tests.support.replstream import StreamCapture


def version(r: redis.Redis) -> tuple[int, ...]:
    return tuple(int(x) for x in str(r.info("server")["redis_version"]).split(".")[:2])


def snapshot(r: redis.Redis) -> dict[bytes, tuple[str, Any, int]]:
    out: dict[bytes, tuple[str, Any, int]] = {}
    for key in r.keys("*"):
        assert isinstance(key, bytes)
        raw = r.type(key)
        t = raw.decode() if isinstance(raw, bytes) else str(raw)
        value: Any = {"string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
                      "set": r.smembers, "zset": lambda k: r.zrange(k, 0, -1, withscores=True)}[t](key)
        out[key] = (t, value, r.pttl(key))
    return out


def assert_same(src: redis.Redis, tgt: redis.Redis, tolerance_ms: int = 1000) -> int:
    a, b = snapshot(src), snapshot(tgt)
    assert a.keys() == b.keys()
    for key, (t, v, ttl) in a.items():
        t2, v2, ttl2 = b[key]
        assert (t, v) == (t2, v2), key
        assert (ttl < 0) == (ttl2 < 0) and abs(ttl - ttl2) <= tolerance_ms, (key, ttl, ttl2)
    return len(a)


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[LocalRedisServer, LocalRedisServer]]:
    src = LocalRedisServer(need(request.param), workdir=tmp_path / "src").start()
    tgt = LocalRedisServer(need("redis-7.0"), workdir=tmp_path / "tgt").start()
    yield src, tgt
    src.stop()
    tgt.stop()


def write_mix(r: redis.Redis, r1: redis.Redis) -> None:
    for i in range(200):
        r.set(f"s{i}", f"v{i}")
        r.incr("counter")
        r.hset("h", f"f{i}", i)
        r.lpush("l", i)
    r.expire("s1", 300)
    r.execute_command("SETEX", "sx", 200, "x")
    r.set("spx", "y", px=150_000)
    r.set("gone", "z", px=50)
    r.sadd("set", "a", "b")
    r.zadd("z", {"a": 1.5, "b": 2})
    r.publish("news", "hello")
    with r.pipeline(transaction=True) as p:
        p.incr("counter")
        p.hset("h", "multi", 1)
        p.lpush("l", "m")
        p.execute()
    for i in range(50):
        r1.set(f"db1:{i}", i)
    r1.expire("db1:0", 100)
    time.sleep(0.2)
    assert r.get("gone") is None           # lazy expiry: the source propagates DEL gone


@pytest.mark.parametrize("pair", ["redis-3.2", "redis-6.2", "redis-7.0"], indirect=True)
def test_a_captured_stream_applied_makes_the_target_equal(pair: tuple[LocalRedisServer, LocalRedisServer]) -> None:
    src, tgt = pair
    r, r1, t, t1 = src.client(), src.client(db=1), tgt.client(), tgt.client(db=1)
    cap = StreamCapture(src.host, src.port)
    try:
        write_mix(r, r1)
        end = int(r.info("replication")["master_repl_offset"])
        cap.wait_for(end)
    finally:
        cap.stop()
    caps = TargetCaps(version(r), version(t))
    time.sleep(1.5)      # applied late: relative TTLs left as they were would end 1.5 s too late on the target
    applier = Applier(t, cap.start_offset, batch_size=64)
    try:
        progress = applier.apply(units(cap.chunks, cap.start_offset, caps))
    finally:
        applier.close()
    assert progress.applied_offset == end and progress.lag_bytes == 0
    assert progress.units_applied > 800 and progress.expiry_dels_skipped == 0
    assert assert_same(r, t) > 200 and assert_same(r1, t1) == 50
    assert t.pttl("s1") > 290_000 and t1.pttl("db1:0") > 90_000


@pytest.mark.parametrize("pair", ["redis-3.2"], indirect=True)
def test_an_expiry_del_does_not_delete_a_key_refreshed_on_the_target(
        pair: tuple[LocalRedisServer, LocalRedisServer]) -> None:
    src, tgt = pair
    r, t = src.client(), tgt.client()
    cap = StreamCapture(src.host, src.port)
    try:
        r.execute_command("SETEX", "refreshed", 1, "old")
        r.execute_command("SETEX", "expired", 1, "old")
        r.set("deleted", "v")
        time.sleep(1.2)
        assert r.get("refreshed") is None and r.get("expired") is None    # the source propagates two DELs
        r.delete("deleted")                                               # an app DEL
        end = int(r.info("replication")["master_repl_offset"])
        cap.wait_for(end)
    finally:
        cap.stop()
    got = list(units(cap.chunks, cap.start_offset, TargetCaps(version(r), version(t))))
    first_del = next(i for i, u in enumerate(got) if u.ops and u.ops[0].args[0] == b"DEL")
    applier = Applier(t, cap.start_offset)
    try:
        applier.apply_batch(got[:first_del])
        t.set("refreshed", "new", ex=100)        # written on the target after the stream set the old copy
        t.persist("deleted")
        applier.apply_batch(got[first_del:])
    finally:
        applier.close()
    assert t.get("refreshed") == b"new" and t.get("expired") is None and t.get("deleted") is None
    assert applier.progress.expiry_dels_skipped == 1 and applier.progress.applied_offset == end


@pytest.mark.parametrize("pair", ["redis-7.0"], indirect=True)
def test_a_command_the_target_refuses_stops_with_the_applied_offset(
        pair: tuple[LocalRedisServer, LocalRedisServer]) -> None:
    src, tgt = pair
    r, t = src.client(), tgt.client()
    cap = StreamCapture(src.host, src.port)
    try:
        r.set("a", "1")
        r.lpush("b", "x")
        r.set("c", "1")
        cap.wait_for(int(r.info("replication")["master_repl_offset"]))
    finally:
        cap.stop()
    t.set("b", "a string on the target")           # the target differs: LPUSH b gets WRONGTYPE
    applier = Applier(t, cap.start_offset)
    got = list(units(cap.chunks, cap.start_offset, TargetCaps(version(r), version(t))))
    with pytest.raises(CatchUpError, match="WRONGTYPE"):
        applier.apply(got)
    set_a = next(u for u in got if u.ops and u.ops[0].args[:2] == (b"SET", b"a"))
    assert applier.progress.applied_offset == set_a.end_offset
    applier.close()


@pytest.mark.parametrize("grace_ms", [0, 60_000])
@pytest.mark.parametrize("pair", ["redis-3.2"], indirect=True)
def test_a_ttl_the_source_extends_does_not_run_out_on_a_lagging_target(
        pair: tuple[LocalRedisServer, LocalRedisServer], grace_ms: int) -> None:
    src, tgt = pair
    r, t = src.client(), tgt.client()
    cap = StreamCapture(src.host, src.port)
    try:
        r.execute_command("SETEX", "session", 1, "v")
        r.set("plain", "v", px=1000)
        r.set("abs", "v")
        abs_at = int(time.time()) + 2
        r.expireat("abs", abs_at)                   # absolute already: graced too
        time.sleep(0.7)
        r.expire("session", 10)                  # refreshed on the source before it ran out
        cap.wait_for(int(r.info("replication")["master_repl_offset"]))
    finally:
        cap.stop()
    time.sleep(0.6)                              # the target lags: the old expiry has passed when it applies
    applier = Applier(t, cap.start_offset, ttl_grace_ms=grace_ms)
    try:
        applier.apply(units(cap.chunks, cap.start_offset, TargetCaps(version(r), version(t))))
        if not grace_ms:
            assert t.get("session") is None      # the TTL hole the grace exists for: the key is lost
            return
        assert t.get("session") == b"v" and t.pttl("plain") > 50_000 and t.pttl("abs") > 50_000
        assert applier.finalize_ttls() == 3
    finally:
        applier.close()
    assert t.pttl("abs") <= 2_000
    time.sleep(max(0.0, abs_at - time.time() + 0.1))
    assert t.get("plain") is None and t.get("abs") is None and 6_000 < t.pttl("session") <= 10_000
    assert assert_same(r, t) == 1
