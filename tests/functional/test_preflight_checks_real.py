"""Cluster-mode and sizing checks against real servers holding what real apps write.

Each server is filled the way the app does it (Sidekiq's MULTI push and heartbeat, kombu's bindings and unacked
index, BullMQ's add-job script, a Redis 3.2 app on db 2), then `cluster_mode_findings` / `size_findings` read it
as preflight would. The slot function is checked against ``CLUSTER KEYSLOT``, which Redis answers only with
``cluster-enabled yes`` (Valkey 9.1 answers without it).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from elasticache_migrate.preflight.cluster_safety import cluster_mode_findings, key_slot
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.sizing import (
    GIB,
    NODE_TYPES,
    size_findings,
    used_memory_from,
    used_memory_from_rdb_aux,
)
from elasticache_migrate.rdb import scan_rdb
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import need

Start = Callable[..., LocalRedisServer]


def cluster_port() -> int:
    """A free port below 55535 whose cluster-bus port (+10000) is free too: Redis refuses higher ones."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20000, 55000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster-enabled server")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start real servers by catalogue name; all are stopped at the end of the test."""
    started: list[LocalRedisServer] = []

    def _start(name: str, **config: str) -> LocalRedisServer:
        port = cluster_port() if config.get("cluster-enabled") == "yes" else 0
        srv = LocalRedisServer(need(name), port=port, workdir=tmp_path / f"{name}-{len(started)}",
                               config=config).start()
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        srv.stop()


def by_severity(findings: list[Finding], severity: str) -> list[Finding]:
    return [f for f in findings if f.severity == severity]


def one(findings: list[Finding], severity: str, starts: str) -> Finding:
    """The single finding of ``severity`` whose text starts with ``starts``."""
    hits = [f for f in findings if f.severity == severity and f.seen.startswith(starts)]
    assert len(hits) == 1, (starts, findings)
    return hits[0]


def fill_plain(r: redis.Redis, n: int) -> None:
    """An ordinary web app's keys: users, sessions, page cache."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"user:{i}:name", f"user {i}")
        if i % 3 == 0:
            pipe.set(f"session:{uuid.UUID(int=i)}", "{}", ex=3600)
        if i % 5 == 0:
            pipe.set(f"views/home/{i}", "<html/>")
    pipe.execute()


# --- slots ----------------------------------------------------------------------------------------------------


EDGE_KEYS = [b"", b"123456789", b"foo{bar}", b"foo{}{bar}", b"foo{{bar}}zap", b"foo{bar}{zap}", b"{user1000}.x",
             b"{", b"}", b"{}", b"a{b", b"\xff{\x00}", "fü{ß}".encode()]


@pytest.mark.parametrize(("name", "config"), [
    ("redis-7.0", {"cluster-enabled": "yes", "cluster-config-file": "nodes.conf"}),
    ("redis-3.2", {"cluster-enabled": "yes", "cluster-config-file": "nodes.conf"}),
    ("valkey-9.1", {}),
])
def test_key_slot_matches_cluster_keyslot(start: Start, name: str, config: dict[str, str]) -> None:
    r = start(name, **config).client()
    rng = random.Random(11)
    keys = EDGE_KEYS + [bytes(rng.choice(b"{}ab:\x00\xff") for _ in range(rng.randrange(1, 16))) for _ in range(1500)]
    keys += [os.urandom(rng.randrange(1, 40)) for _ in range(500)]
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", k)
    assert [key_slot(k) for k in keys] == pipe.execute()


def test_redis_answers_cluster_keyslot_only_in_cluster_mode(start: Start) -> None:
    with pytest.raises(redis.ResponseError, match="cluster support disabled"):
        start("redis-7.0").client().execute_command("CLUSTER", "KEYSLOT", "foo")


# --- app fingerprints -----------------------------------------------------------------------------------------


def write_sidekiq(r: redis.Redis, jobs: int = 20) -> str:
    """What Sidekiq 7 writes: client push (MULTI SADD queues + LPUSH), scheduled/retry/dead sets, heartbeat, stats."""
    now = time.time()
    for i in range(jobs):
        job = {"class": "MailerJob", "args": [i], "queue": "default", "jid": uuid.uuid4().hex[:24],
               "created_at": now, "enqueued_at": now, "retry": True}
        with r.pipeline(transaction=True) as pipe:  # Sidekiq::Client#raw_push
            pipe.sadd("queues", "default")
            pipe.lpush("queue:default", json.dumps(job))
            pipe.execute()
    r.zadd("schedule", {json.dumps({"class": "ReportJob", "args": [], "jid": "a" * 24}): now + 3600})
    r.zadd("retry", {json.dumps({"class": "MailerJob", "args": [1], "retry_count": 1, "jid": "b" * 24}): now + 60})
    r.zadd("dead", {json.dumps({"class": "MailerJob", "args": [2], "jid": "c" * 24}): now})
    identity = "web-1:4242:0a1b2c3d4e5f"
    with r.pipeline(transaction=True) as pipe:  # Sidekiq::Launcher#❤ (heartbeat)
        pipe.sadd("processes", identity)
        pipe.exists(identity)
        pipe.hset(identity, mapping={"info": json.dumps({"hostname": "web-1", "pid": 4242, "concurrency": 5}),
                                     "busy": 0, "beat": now, "quiet": "false", "rss": 123456, "rtt_us": 80})
        pipe.expire(identity, 60)
        pipe.hset(f"{identity}:work", "tid-1", json.dumps({"queue": "default", "run_at": int(now)}))
        pipe.expire(f"{identity}:work", 60)
        pipe.execute()
    with r.pipeline(transaction=True) as pipe:
        pipe.incrby("stat:processed", 17)
        pipe.incrby(f"stat:processed:{time.strftime('%Y-%m-%d')}", 17)
        pipe.incrby("stat:failed", 1)
        pipe.execute()
    return identity


def test_sidekiq_blocks_cluster_mode(start: Start) -> None:
    r = start("redis-7.0").client()
    fill_plain(r, 100)
    identity = write_sidekiq(r)
    findings = cluster_mode_findings(r)
    sk = one(findings, "block", "Sidekiq keys: ")
    for key in ("queues", "queue:default", "schedule", "processes"):
        assert key in sk.seen
    assert "Sidekiq does not support Redis Cluster" in sk.seen and "CROSSSLOT" in sk.seen
    assert f"scanned the whole keyspace of {r.dbsize():,} key(s) (db0: {r.dbsize():,})" in sk.seen
    assert "keep cluster mode disabled" in sk.todo
    assert len(by_severity(findings, "block")) == 1, findings
    # Sidekiq's MULTI pushes are visible in commandstats as well
    cmds = one(findings, "warn", "commands that fail with CROSSSLOT")
    assert "MULTI ×" in cmds.seen and "EXEC ×" in cmds.seen
    assert "(+" in sk.seen and identity not in str(by_severity(findings, "warn"))  # more keys than shown
    one(findings, "info", f"all {r.dbsize():,} key(s) are in db0")


def write_namespaced_sidekiq(r: redis.Redis, ns: str) -> None:
    """What Sidekiq writes under redis-namespace ``ns`` (``myapp:queues``, ``myapp:queue:default``, …)."""
    with r.pipeline(transaction=True) as pipe:
        pipe.sadd(f"{ns}:queues", "default")
        pipe.lpush(f"{ns}:queue:default", json.dumps({"class": "MailerJob", "args": [1], "jid": "d" * 24}))
        pipe.execute()
    r.sadd(f"{ns}:processes", "web-2:77:0a1b2c3d4e5f")
    r.incrby(f"{ns}:stat:processed", 3)


def test_namespaced_sidekiq_and_custom_prefix_bull_among_60000_keys(start: Start) -> None:
    """Issue 11, item 10: a sample of 10,000 keys missed both; the shapes are matched over the whole keyspace."""
    r = start("redis-7.0").client()
    pipe = r.pipeline(transaction=False)
    for i in range(60_000):
        pipe.set(f"cache:page:{i}", "x")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    write_namespaced_sidekiq(r, "myapp")
    add_bull_jobs(r, "jobs:email", n=2)      # BullMQ with prefix "jobs": jobs:email:id, :meta, :events, :wait …
    total = r.dbsize()
    findings = cluster_mode_findings(r)
    sk = one(findings, "block", "Sidekiq keys: ")
    assert "myapp:queues" in sk.seen and "myapp:queue:default" in sk.seen
    assert f"scanned the whole keyspace of {total:,} key(s) (db0: {total:,}) for" in sk.seen
    bull = one(findings, "block", "Bull/BullMQ queue(s) without a hash tag: jobs:email ")
    assert "jobs:email:id" in bull.seen


def test_apps_outside_db0_are_found_too(start: Start) -> None:
    srv = start("redis-7.0")
    r = srv.client()
    fill_plain(r, 50)
    write_namespaced_sidekiq(srv.client(db=3), "jobs")
    findings = cluster_mode_findings(r)
    sk = one(findings, "block", "Sidekiq keys: ")
    assert "jobs:queues" in sk.seen and f"(db0: {r.dbsize():,}, db3: 4)" in sk.seen
    assert int(r.execute_command("CLIENT", "INFO").split(b"db=")[1].split(b" ")[0]) == 0  # the pool stays on db0


def test_celery_kombu_blocks_cluster_mode(start: Start) -> None:
    r = start("redis-7.0").client()
    fill_plain(r, 50)
    # kombu's Redis transport: exchange bindings, the queue list, the unacked hash + index; Celery's results
    r.sadd("_kombu.binding.celery", "celery\x06\x16\x06\x16celery")
    r.sadd("_kombu.binding.celery.pidbox", "\x06\x16\x06\x16celery@worker-1.celery.pidbox")
    r.sadd("_kombu.binding.celeryev", "worker.#\x06\x16\x06\x16celeryev.4f1c")
    body = json.dumps({"body": "W1tdLCB7fV0=", "headers": {"task": "app.tasks.add", "id": str(uuid.uuid4())},
                       "properties": {"delivery_tag": "c7f7e0d1"}})
    r.lpush("celery", body)
    with r.pipeline(transaction=True) as pipe:  # QoS.append: unacked + unacked_index together
        pipe.zadd("unacked_index", {"c7f7e0d1": time.time()})
        pipe.hset("unacked", "c7f7e0d1", json.dumps([body, "", "celery"]))
        pipe.execute()
    task_id = str(uuid.uuid4())
    r.set(f"celery-task-meta-{task_id}", json.dumps({"status": "SUCCESS", "result": 3, "task_id": task_id}), ex=86400)
    findings = cluster_mode_findings(r)
    cel = one(findings, "block", "Celery/kombu keys: ")
    for key in ("_kombu.binding.celery", "unacked_index", f"celery-task-meta-{task_id}"):
        assert key in cel.seen
    assert "keep cluster mode disabled" in cel.todo
    assert len(by_severity(findings, "block")) == 1, findings


# BullMQ's addStandardJob, reduced to the keys it writes: one script over several of the queue's keys
ADD_JOB = """
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2] .. id, 'name', ARGV[1], 'data', ARGV[2], 'opts', '{}', 'timestamp', ARGV[3])
redis.call('LPUSH', KEYS[3], id)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 10000, '*', 'event', 'added', 'jobId', id, 'name', ARGV[1])
redis.call('HSET', KEYS[5], 'opts.maxLenEvents', 10000, 'version', 'bullmq:5.12.0')
return id
"""


def add_bull_jobs(r: redis.Redis, base: str, n: int = 5) -> None:
    """Add ``n`` jobs the way BullMQ does, with queue key base ``base`` (``bull:email`` or ``{bull:email}``)."""
    for i in range(n):
        r.eval(ADD_JOB, 5, f"{base}:id", f"{base}:", f"{base}:wait", f"{base}:events", f"{base}:meta",
               "send", json.dumps({"to": f"u{i}@example.com"}), int(time.time() * 1000))


def test_untagged_bull_queue_blocks_cluster_mode(start: Start) -> None:
    r = start("redis-7.0").client()
    fill_plain(r, 50)
    add_bull_jobs(r, "bull:email")
    findings = cluster_mode_findings(r)
    bull = one(findings, "block", "Bull/BullMQ queue(s) without a hash tag: bull:email ")
    assert "bull:email:" in bull.seen and "CROSSSLOT" in bull.seen
    assert "prefix: '{bull}'" in bull.todo and "drain the queues" in bull.todo
    assert "EVAL ×5" in one(findings, "warn", "commands that fail with CROSSSLOT").seen
    assert len(by_severity(findings, "block")) == 1, findings


def test_hash_tagged_bull_queues_are_info(start: Start) -> None:
    r = start("redis-7.0").client()
    fill_plain(r, 50)
    add_bull_jobs(r, "{bull:email}")
    add_bull_jobs(r, "{bull}:sms", n=2)  # BullMQ with prefix: '{bull}'
    findings = cluster_mode_findings(r)
    assert by_severity(findings, "block") == []
    email = one(findings, "info", "Bull/BullMQ queue bull:email uses hash tag {bull:email}")
    assert f"map to slot {key_slot(b'bull:email')} — fine with cluster mode" in email.seen
    sms = one(findings, "info", "Bull/BullMQ queue bull:sms uses hash tag {bull}")
    assert f"slot {key_slot(b'bull')}" in sms.seen
    # the scripts still count as scripts: the finding says counts cannot tell a tagged call from a cross-slot one
    assert "Counts cannot show whether the keys shared a slot" in one(findings, "warn", "commands that fail").seen


# --- Redis 3.2: other databases and commandstats ------------------------------------------------------------


def test_redis_32_db2_and_multikey_commands(start: Start) -> None:
    srv = start("redis-3.2")
    app = srv.client(db=2)  # redis-py sends SELECT 2 on every new connection, as many apps do
    fill_plain(app, 30)
    for _ in range(3):
        with app.pipeline(transaction=True) as pipe:
            pipe.incr("counter")
            pipe.set("last", "x")
            pipe.execute()
    app.eval("return redis.call('GET', KEYS[1])", 1, "counter")
    app.mget("user:1:name", "user:2:name")
    app.mget("user:3:name", "user:4:name")
    app.rpoplpush("jobs", "jobs:done")
    app.connection_pool.disconnect()
    db2 = app.dbsize()
    findings = cluster_mode_findings(srv.client())
    db = one(findings, "block", "data outside db0: ")
    assert f"db2 ({db2:,} keys)" in db.seen and "MOVE" in db.todo
    sel = one(findings, "warn", "the app selects databases (SELECT ×")
    assert "SELECT 0 is harmless" in sel.todo
    cmds = one(findings, "warn", "commands that fail with CROSSSLOT")
    for shown in ("MGET ×2", "MULTI ×3", "EVAL ×1", "RPOPLPUSH ×1"):
        assert shown in cmds.seen
    assert "EXEC counted more often than MULTI" in cmds.seen  # 3.2.6 books INCR/SET inside MULTI under EXEC
    assert "BLPOP" in cmds.seen  # says what cannot be counted
    one(findings, "info", f"no Sidekiq, Celery/kombu, Resque or Bull/BullMQ keys found (scanned the whole keyspace of "
                          f"{db2:,} key(s) (db2: {db2:,})")  # every db holding keys is scanned


def test_redis_32_counts_commands_inside_multi_as_exec(start: Start) -> None:
    """A quirk the warn finding lives with: 3.2.6 books MULTI-queued commands under EXEC, 7.0 under their own name."""
    counts = {}
    for name in ("redis-3.2", "redis-7.0"):
        r = start(name).client()
        with r.pipeline(transaction=True) as pipe:
            pipe.mget("a", "b")
            pipe.execute()
        stats = r.info("commandstats")
        counts[name] = {k: stats.get(f"cmdstat_{k}", {}).get("calls", 0) for k in ("multi", "exec", "mget")}
    assert counts["redis-3.2"] == {"multi": 1, "exec": 2, "mget": 0}
    assert counts["redis-7.0"] == {"multi": 1, "exec": 1, "mget": 1}


@pytest.mark.parametrize("name", ["redis-3.2", "redis-6.2", "redis-7.0", "valkey-9.1"])
def test_clean_server_does_not_block(start: Start, name: str) -> None:
    r = start(name).client()
    fill_plain(r, 300)
    r.get("user:1:name")
    r.incr("hits")
    r.hset("settings", "theme", "dark")
    findings = cluster_mode_findings(r)
    assert by_severity(findings, "block") == [] and by_severity(findings, "warn") == [], findings
    one(findings, "info", f"all {r.dbsize():,} key(s) are in db0")
    one(findings, "info", f"no Sidekiq, Celery/kombu, Resque or Bull/BullMQ keys found (scanned the whole keyspace of "
                          f"{r.dbsize():,} key(s)")
    one(findings, "info", "no SELECT, transaction, script or multi-key command counted since the server started")


# --- sizing ---------------------------------------------------------------------------------------------------

TEST_NODES = {"cache.test.small": 0.02, "cache.test.medium": 0.03, "cache.test.large": 0.1}  # 15.4 / 23 / 76.8 MiB


def fill_mb(r: redis.Redis, mb: int) -> None:
    value = os.urandom(100 * 1024)
    pipe = r.pipeline(transaction=False)
    for i in range(mb * 10):
        pipe.set(f"blob:{i}", value)
    pipe.execute()


def test_sizing_against_a_real_server(start: Start) -> None:
    srv = start("redis-7.0")
    r = srv.client()
    fill_mb(r, 20)
    used = used_memory_from(r)
    assert 20 * 1024 * 1024 < used < 30 * 1024 * 1024

    (small,) = size_findings(used, "cache.test.small", node_types=TEST_NODES)
    assert small.severity == "block" and small.seen.startswith("the data does not fit: used_memory ")
    assert "restore-failed" in small.seen
    assert small.todo.startswith("set target.node_type — smallest cache.test that fits: cache.test.large")
    (medium,) = size_findings(used, "cache.test.medium", node_types=TEST_NODES)
    assert medium.severity == "block" and medium.seen.startswith("no room to grow")   # fits, but not +30 %
    (large,) = size_findings(used, "cache.test.large", node_types=TEST_NODES)
    assert large.severity == "info" and "fits" in large.seen
    (micro,) = size_findings(used, "cache.t4g.micro")  # the real table: 384 MiB usable
    assert micro.severity == "info" and NODE_TYPES["cache.t4g.micro"] * GIB > used

    # the RDB's aux used-mem tells the same story when the source cannot be asked (e.g. only the file is at hand)
    r.save()
    from_rdb = used_memory_from_rdb_aux(scan_rdb(srv.rdb_path).aux)
    assert from_rdb is not None and abs(from_rdb - used) < 0.1 * used
    (f,) = size_findings(from_rdb, "cache.test.small", node_types=TEST_NODES, source="RDB used-mem")
    assert f.severity == "block" and "RDB used-mem" in f.seen and "cache.test.large" in f.todo


def test_used_memory_on_redis_32(start: Start) -> None:
    srv = start("redis-3.2")
    r = srv.client()
    fill_mb(r, 2)
    info: dict[str, Any] = r.info("memory")
    assert "used_memory_dataset" not in info  # Redis < 4
    assert used_memory_from(r) == info["used_memory"] or abs(used_memory_from(r) - info["used_memory"]) < 65536
    r.save()
    assert used_memory_from_rdb_aux(scan_rdb(srv.rdb_path).aux) is not None  # 3.2 writes used-mem
