"""elasticache_migrate.preflight.cluster_safety without a server: slots, app fingerprints, commandstats and keyspace
findings.

The slot function is checked against Redis's own vectors (cluster spec) here and against real ``CLUSTER KEYSLOT``
answers in tests/functional/test_preflight_checks_real.py.
"""

from __future__ import annotations

import fnmatch
import random

import pytest
from redis.crc import key_slot as redis_py_key_slot

from elasticache_migrate.preflight.cluster_safety import (
    ANCHOR_KEYS,
    KEY_SHAPES,
    SHAPES,
    CommandUsage,
    ShapeFilter,
    app_findings,
    bull_queues,
    classify_keys,
    command_findings,
    coverage_text,
    hash_tag,
    key_slot,
    keyspace_findings,
    multikey_command_usage,
)

# --- slots ----------------------------------------------------------------------------------------------------


def test_crc16_vector_from_the_cluster_spec() -> None:
    # the spec's CRC16 reference: "123456789" -> 0x31C3; 0x31C3 % 16384 = 12739
    assert key_slot(b"123456789") == 0x31C3 % 16384 == 12739


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        (b"{user1000}.following", b"user1000"),     # spec examples
        (b"{user1000}.followers", b"user1000"),
        (b"foo{}{bar}", b"foo{}{bar}"),             # empty first tag: whole key
        (b"foo{{bar}}zap", b"{bar"),                # first "{", first "}" after it
        (b"foo{bar}{zap}", b"bar"),                 # only the first tag counts
        (b"foo{bar", b"foo{bar"),                   # no closing brace
        (b"}foo{bar}", b"bar"),
        (b"", b""),
    ],
)
def test_hash_tag_rules(key: bytes, hashed: bytes) -> None:
    assert key_slot(key) == key_slot(hashed) == redis_py_key_slot(key)
    tag = hash_tag(key)
    assert (tag if tag is not None else key) == hashed


def test_slots_match_redis_py_on_random_bytes() -> None:
    rng = random.Random(7)
    alphabet = b"{}ab:\x00\xff"
    for _ in range(5000):
        k = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert key_slot(k) == redis_py_key_slot(k), k


def test_str_keys_are_utf8() -> None:
    assert key_slot("fö{ü}") == key_slot("ü".encode())
    assert 0 <= key_slot("x") < 16384


# --- fingerprints ---------------------------------------------------------------------------------------------

SIDEKIQ = [b"queues", b"queue:default", b"queue:mailers", b"schedule", b"retry", b"dead", b"processes",
           b"stat:processed", b"stat:failed", b"stat:processed:2024-05-01", b"web-1:4242:0a1b2c3d4e5f",
           b"web-1:4242:0a1b2c3d4e5f:work"]
CELERY = [b"_kombu.binding.celery", b"_kombu.binding.celery.pidbox", b"celery", b"unacked", b"unacked_index",
          b"celery-task-meta-8f1c0b8e-3c59-4b9e-9d0a-1f2e3d4c5b6a"]
PLAIN = [b"user:1", b"session:abc", b"cache:views/home", b"user:42:active", b"user:42:completed", b"retry",
         b"queue:jobs", b"celeryish", b"counter"]


def test_sidekiq_keys_recognised_with_process_hashes() -> None:
    found = classify_keys(PLAIN + SIDEKIQ)
    # with Sidekiq there, its generic-looking names in PLAIN ("retry", "queue:jobs") are Sidekiq's too
    # (keys are de-duplicated, first occurrence kept); the process hash and its :work hash are included
    assert found["sidekiq"] == [b"retry", b"queue:jobs", *(k for k in SIDEKIQ if k != b"retry")]
    assert "celery" not in found and "bull" not in found and "resque" not in found


def test_sidekiq_under_a_redis_namespace() -> None:
    keys = [b"myapp:queues", b"myapp:queue:default", b"myapp:stat:processed"]
    assert classify_keys(keys)["sidekiq"] == keys


def test_generic_names_alone_are_not_sidekiq() -> None:
    # one weak kind ("retry", "queue:*") or one strong kind alone is not enough
    assert classify_keys([b"retry", b"queue:jobs", b"schedule"]) == {}
    assert classify_keys([b"stat:processed", b"stat:failed"]) == {}
    assert classify_keys([b"host:12:0123456789ab"]) == {}  # a process-like name without Sidekiq around it


def test_celery_kombu_keys() -> None:
    found = classify_keys(PLAIN + CELERY)
    assert found["celery"] == CELERY  # the "celery" queue list only counts because kombu keys are there
    assert classify_keys([b"celery", b"unacked"]) == {}
    assert classify_keys([b"unacked", b"unacked_index"])["celery"] == [b"unacked", b"unacked_index"]
    assert classify_keys([b"celery-task-meta-1"])["celery"] == [b"celery-task-meta-1"]


def test_resque_is_not_mistaken_for_sidekiq() -> None:
    keys = [b"resque:queues", b"resque:queue:default", b"resque:stat:processed", b"resque:workers"]
    assert classify_keys(keys) == {"resque": keys}


def test_bull_untagged_and_tagged() -> None:
    untagged = [b"bull:email:id", b"bull:email:wait", b"bull:email:1", b"bull:email:1:logs", b"bull:email:meta"]
    tagged = [b"{bull:sms}:id", b"{bull:sms}:wait", b"{bull:sms}:meta", b"{bull}:push:wait", b"{bull}:push:id",
              b"bull:{fax}:wait", b"bull:{fax}:meta"]
    found = classify_keys(PLAIN + untagged + tagged)
    assert found["bull"] == untagged
    assert found["bull-tagged"] == tagged
    queues = {q.name: q for q in bull_queues(tagged)}
    assert set(queues) == {"bull:sms", "bull:push", "bull:fax"}
    assert queues["bull:sms"].slot == key_slot(b"bull:sms")
    assert queues["bull:push"].tag == b"bull" and queues["bull:fax"].tag == b"fax"


def test_bull_with_custom_prefix_needs_bull_layout() -> None:
    assert classify_keys([b"jobs:email:wait", b"jobs:email:meta"])["bull"] == [b"jobs:email:wait",
                                                                              b"jobs:email:meta"]
    assert classify_keys([b"user:42:active", b"user:42:completed"]) == {}  # no structural key (meta, id, wait…)


def test_bull_queue_with_mixed_tags_is_untagged() -> None:
    keys = [b"{bull:email}:wait", b"bull:email:meta"]
    assert classify_keys(keys) == {"bull": keys}


def test_anchor_keys_are_all_recognisable() -> None:
    # every probed name must be able to contribute to a fingerprint
    found = classify_keys(list(ANCHOR_KEYS))
    got = {k for ks in found.values() for k in ks}
    assert got == set(ANCHOR_KEYS)


# --- app findings ---------------------------------------------------------------------------------------------


def test_app_findings_name_app_keys_and_remedy() -> None:
    cov = coverage_text({0: 2000})
    found = app_findings(classify_keys(SIDEKIQ + CELERY + [b"resque:queues", b"bull:email:wait",
                                                           b"{bull:sms}:wait", b"{bull:sms}:meta"]), coverage=cov)
    by = {f.seen.split(" ")[0]: f for f in found}
    sk = by["Sidekiq"]
    assert sk.severity == "block" and "queue:default" in sk.seen and "CROSSSLOT" in sk.seen
    assert "keep cluster mode disabled" in sk.todo
    assert "scanned the whole keyspace of 2,000 key(s) (db0: 2,000) for" in sk.seen
    assert sk.seen.startswith("Sidekiq keys: dead, retry, queues, schedule, processes, stat:failed, queue:default, "
                              "queue:mailers (+4 more).")  # 12 keys, the 8 shortest shown
    assert by["Celery/kombu"].severity == "block" and "_kombu.binding.celery" in by["Celery/kombu"].seen
    assert by["Resque"].severity == "block"
    bull = [f for f in found if f.seen.startswith("Bull/BullMQ queue(s) without")][0]
    assert bull.severity == "block" and "bull:email" in bull.seen and "prefix: '{bull}'" in bull.todo
    assert "drain the queues" in bull.todo
    ok = [f for f in found if f.severity == "info"][0]
    assert f"slot {key_slot(b'bull:sms')}" in ok.seen and "{bull:sms}" in ok.seen


def test_coverage_text() -> None:
    n = len(KEY_SHAPES)
    assert coverage_text({0: 12}) == (f"scanned the whole keyspace of 12 key(s) (db0: 12) for {n} known key shapes, "
                                      "any namespace")
    assert coverage_text({}).startswith("scanned the whole keyspace of 0 key(s) (db0: 0)")
    both = coverage_text({0: 1_000_000, 2: 5}, ["bull:*"])
    assert "1,000,005 key(s) (db0: 1,000,000, db2: 5)" in both and "keys of shape bull:* were too many" in both


@pytest.mark.parametrize("key", [
    *ANCHOR_KEYS, *(k for k in SIDEKIQ if not k.startswith(b"web-1:")), *CELERY,  # process keys: named by a set
    b"myapp:queues", b"myapp:queue:default", b"myapp:stat:processed:2024-01-02",
    b"myapp:processes", b"myapp:schedule", b"myapp:retry", b"myapp:dead", b"myapp:stat:failed",
    b"celery-task-meta-1b2c", b"chord-unlock-x", b"resque:queue:mail", b"jobs:email:id", b"jobs:email:meta",
    b"{jobs:email}:stalled-check", b"jobs:{email}:events", b"{jobs}:email:marker", b"jobs:email:wait",
    b"bull:email:42",
])
def test_every_key_a_fingerprint_needs_matches_a_scan_shape(key: bytes) -> None:
    """The shapes (Redis globs; fnmatchcase is the same for * and literals) cover the regexes' anchors, and the
    byte tests the scan uses agree with the globs."""
    assert any(fnmatch.fnmatchcase(key.decode(), shape) for shape in KEY_SHAPES), key
    assert SHAPES.matches(key)


def test_the_shape_filter_is_the_globs() -> None:
    rng = random.Random(5)
    alphabet = ["queue", "queues", ":", "stat", ":processed", "bull", "_kombu.", "celery", "id", "meta", "x", "{",
                "}", "resque", "dead", "retry", "unacked", "wait", "chord-unlock-", "events"]
    for _ in range(20_000):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 5)))
        want = any(fnmatch.fnmatchcase(key, g) for g in KEY_SHAPES)
        assert SHAPES.matches(key.encode()) is want, key
    assert SHAPES.shape_of(b"bull:email:id") == "*:id"          # an anchor, not one of the bull:* job keys
    assert SHAPES.shape_of(b"bull:email:42") == "bull:*"
    with pytest.raises(ValueError, match="only x\\*"):
        ShapeFilter(("a*b",))


def test_the_anchors_alone_identify_each_app_under_any_namespace() -> None:
    """What the shapes return is enough for classify_keys: a namespaced Sidekiq and a custom-prefix Bull queue."""
    found = classify_keys([b"myapp:queues", b"myapp:queue:default", b"myapp:stat:processed", b"jobs:email:id",
                           b"jobs:email:meta", b"jobs:email:wait"])
    assert set(found) == {"sidekiq", "bull"}


def test_no_apps_no_findings() -> None:
    assert app_findings(classify_keys(PLAIN)) == []


# --- commandstats ---------------------------------------------------------------------------------------------

# what redis-py parses from Redis 3.2 and 7.0 (7.0 adds rejected_calls/failed_calls and cmd|subcommand entries)
STATS_32 = {"cmdstat_get": {"calls": 50, "usec": 9, "usec_per_call": 0.2},
            "cmdstat_mget": {"calls": 7, "usec": 2, "usec_per_call": 0.3},
            "cmdstat_select": {"calls": 3, "usec": 0, "usec_per_call": 0.0},
            "cmdstat_multi": {"calls": 2, "usec": 0, "usec_per_call": 0.0},
            "cmdstat_exec": {"calls": 4, "usec": 1, "usec_per_call": 0.3},
            "cmdstat_eval": {"calls": 1, "usec": 26, "usec_per_call": 26.0},
            "cmdstat_blpop": {"calls": 9, "usec": 6, "usec_per_call": 0.7}}
STATS_70 = {"cmdstat_rpoplpush": {"calls": 5, "usec": 1, "usec_per_call": 0.2, "rejected_calls": 0,
                                  "failed_calls": 0},
            "cmdstat_cluster|keyslot": {"calls": 1, "usec": 1, "usec_per_call": 1.0, "rejected_calls": 0,
                                        "failed_calls": 1},
            "cmdstat_zunionstore": {"calls": 0, "usec": 0, "usec_per_call": 0.0, "rejected_calls": 0,
                                    "failed_calls": 0}}


def test_usage_from_redis_32_stats() -> None:
    usage = multikey_command_usage(STATS_32)
    assert [str(u) for u in usage] == ["MGET ×7", "EXEC ×4", "SELECT ×3", "MULTI ×2", "EVAL ×1"]
    assert {u.command: u.kind for u in usage} == {"mget": "multi-key", "exec": "transaction", "select": "databases",
                                                  "multi": "transaction", "eval": "script"}


def test_usage_from_redis_70_stats_and_raw_text() -> None:
    assert multikey_command_usage(STATS_70) == [CommandUsage("rpoplpush", 5, "multi-key")]
    raw = {"cmdstat_pfmerge": "calls=3,usec=10,usec_per_call=3.33", "bitop": b"calls=1,usec=1"}
    assert [str(u) for u in multikey_command_usage(raw)] == ["PFMERGE ×3", "BITOP ×1"]


def test_command_findings_select_and_multikey() -> None:
    found = command_findings(multikey_command_usage(STATS_32), uptime_seconds=12 * 86400 + 5)
    select, rest = found
    assert select.severity == "warn" and "the app selects databases (SELECT ×3" in select.seen
    assert "since the server started (up 12 days) or its last CONFIG RESETSTAT" in select.seen
    assert "SELECT 0 is harmless" in select.todo
    assert rest.severity == "warn"
    for shown in ("MGET ×7", "EXEC ×4", "MULTI ×2", "EVAL ×1", "BLPOP", "not countable"):
        assert shown in rest.seen
    assert "MGET only fail(s) with several keys" in rest.seen
    assert "EXEC counted more often than MULTI: Redis 3.2" in rest.seen  # 4 EXEC, 2 MULTI
    assert "{hash tag}" in rest.todo


def test_command_findings_nothing_counted() -> None:
    (only,) = command_findings([], uptime_seconds=300)
    assert only.severity == "info" and "no SELECT, transaction, script or multi-key command" in only.seen
    assert "(up 5 min)" in only.seen


def test_redis8_cluster_incompatible_ops() -> None:
    blocked = command_findings([], stats={"cluster_incompatible_ops": 42}, sample_ratio=100)
    assert [f.severity for f in blocked] == ["info", "block"]
    assert "42 operation(s) that would fail in cluster mode" in blocked[1].seen and "100%" in blocked[1].seen
    clean = command_findings([], stats={"cluster_incompatible_ops": 0}, sample_ratio=10)
    assert "no cross-slot operation seen" in clean[1].seen
    off = command_findings([], stats={"cluster_incompatible_ops": 0}, sample_ratio=0)
    assert "sampling is off" in off[1].seen and "CONFIG SET cluster-compatibility-sample-ratio" in off[1].todo
    assert command_findings([], stats={"total_commands_processed": 5}) == command_findings([])


# --- keyspace -------------------------------------------------------------------------------------------------


def test_data_outside_db0_blocks() -> None:
    (f,) = keyspace_findings({"db0": {"keys": 10, "expires": 0}, "db2": {"keys": 1, "expires": 0},
                              "db5": {"keys": 300, "expires": 3}, "db7": {"keys": 0}})
    assert f.severity == "block"
    assert "db2 (1 key), db5 (300 keys)" in f.seen and "db7" not in f.seen
    assert "MOVE" in f.todo and "keep cluster mode disabled" in f.todo


def test_db0_only_is_info() -> None:
    (f,) = keyspace_findings({"db0": "keys=1234,expires=0,avg_ttl=0"})
    assert f.severity == "info" and "1,234 key(s) are in db0" in f.seen
    assert keyspace_findings({})[0].seen == "all 0 key(s) are in db0"
