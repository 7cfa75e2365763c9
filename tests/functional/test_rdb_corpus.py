"""The RDB corpus (tests/corpus, written by scripts/make_rdb_corpus.py) against every real server available.

Each dump written by Redis 3.0.5 … Valkey 9.1.2 is loaded into each of those servers (8 × 8 pairs); whether the
server starts or refuses it must be what `elasticache_migrate.rdb.compat.server_loads` predicts from the file's
header, and a
refusal must carry the message `elasticache_migrate.rdb.compat.server_refusal` names. Loaded data must have the
manifest's key
counts. Headers nobody here writes (RDB 12 of Redis >= 7.4, a future VALKEY081) are probed by rewriting the
header of a real dump with its checksum zeroed (``rdbchecksum no``): servers judge those at the header.

Missing binaries skip (with the reason), or fail under CI=true (`tests.conftest.need`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.rdb import read_header, read_header_file, scan_rdb
from elasticache_migrate.rdb.compat import server_loads, server_refusal
from elasticache_migrate.testing.binaries import KNOWN_BINARIES
from elasticache_migrate.testing.rdb_corpus import expected_keys, load_outcome, write_dump
from tests.conftest import need

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text())
ENTRIES: list[dict[str, Any]] = MANIFEST["files"]
PROBE_HEADERS = [b"REDIS0012", b"REDIS0079", b"REDIS0080", b"VALKEY081"]


def _keys(entry: dict[str, Any]) -> dict[int, int]:
    return {int(db): n for db, n in entry["keys"].items()}


def test_manifest_covers_every_writer_and_file() -> None:
    assert [e["writer"] for e in ENTRIES] == list(KNOWN_BINARIES)
    assert sorted(p.name for p in CORPUS.glob("*.rdb")) == sorted(e["file"] for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["writer"] for e in ENTRIES])
def test_file_matches_manifest_and_scans(entry: dict[str, Any]) -> None:
    path = CORPUS / entry["file"]
    data = path.read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "regenerate with python -m scripts.make_rdb_corpus"
    assert len(data) < 16 * 1024
    header = read_header_file(path)
    assert header.raw.decode() == entry["header"]
    assert (header.magic, header.version) == (entry["magic"], entry["rdb_version"])
    summary = scan_rdb(path)
    assert summary.complete, summary.stop_reason
    assert summary.checksum_ok is (True if header.version >= 5 else None)
    assert summary.dbs == _keys(entry)
    assert summary.expires == entry["expires"] == 4


@pytest.mark.parametrize("target", KNOWN_BINARIES)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["writer"] for e in ENTRIES])
def test_target_loads_iff_compat_says_so(entry: dict[str, Any], target: str, tmp_path: Path) -> None:
    binary = need(target)
    path = CORPUS / entry["file"]
    header = read_header_file(path)
    loaded, message, keys = load_outcome(binary, path, tmp_path)
    expected = server_refusal(binary.flavor, binary.version, header.magic, header.version)
    assert server_loads(binary.flavor, binary.version, header.magic, header.version) is (expected is None)
    if expected is None:
        assert loaded, f"{target} {binary.version} refused {entry['header']} from {entry['writer']}: {message}"
        assert keys == _keys(entry)
    else:
        assert not loaded, f"{target} {binary.version} loaded {entry['header']}; compat predicted: {expected}"
        assert message.startswith(expected), message


@pytest.mark.parametrize("target", KNOWN_BINARIES)
@pytest.mark.parametrize("raw", PROBE_HEADERS, ids=[h.decode() for h in PROBE_HEADERS])
def test_headers_nobody_here_writes(raw: bytes, target: str, tmp_path: Path) -> None:
    binary = need(target)
    body = (CORPUS / "redis-7.0.rdb").read_bytes()[9:-8]
    probe = tmp_path / "probe.rdb"
    probe.write_bytes(raw + body + bytes(8))  # CRC 0: not checked on load
    header = read_header(raw)
    loaded, message, _ = load_outcome(binary, probe, tmp_path / "server")
    expected = server_refusal(binary.flavor, binary.version, header.magic, header.version)
    assert loaded is (expected is None), f"{target} {binary.version} {raw.decode()}: {message}"
    if expected is not None:
        assert message.startswith(expected), message


@pytest.mark.parametrize("writer", KNOWN_BINARIES)
def test_generator_still_writes_what_the_manifest_says(writer: str, tmp_path: Path) -> None:
    binary = need(writer)
    entry = next(e for e in ENTRIES if e["writer"] == writer)
    fresh = write_dump(binary, tmp_path / entry["file"])
    assert fresh["version"] == entry["version"]
    assert (fresh["header"], fresh["keys"], fresh["expires"]) == (entry["header"], entry["keys"], entry["expires"])
    assert _keys(fresh) == expected_keys(binary)
    assert abs(fresh["size"] - entry["size"]) < 64  # aux fields (ctime, used-mem, repl-id) vary a little
