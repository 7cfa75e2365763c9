"""The RDB stream check, and the sink writing a checked local copy (no S3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.errors import ExtractError
from elasticache_migrate.rdb import crc64_jones
from elasticache_migrate.staging.check import RdbStreamCheck, checksum_word
from elasticache_migrate.staging.sink import stage, write_checked
from elasticache_migrate.state import Extracted
from tests.unit.staging.conftest import random_cuts, rdb_bytes


def test_stream_check_takes_the_header_from_pieces_of_any_size() -> None:
    data = rdb_bytes(3000)
    for cuts in ([1, 2, 3, 5, 8], random_cuts(len(data), 7, 100), list(range(1, 40))):
        check = RdbStreamCheck("test")
        start = 0
        for end in [*cuts, len(data)]:
            check.feed(memoryview(data)[start:end])
            start = end
        ex = check.result("/x")
        assert (ex.magic, ex.rdb_version, ex.size, ex.checksum_ok) == ("REDIS", 10, len(data), True)


def test_stream_check_of_a_tiny_rdb_and_of_a_non_rdb() -> None:
    body = b"REDIS0009\xff"
    tiny = body + crc64_jones(body).to_bytes(8, "little")
    check = RdbStreamCheck("tiny")
    check.feed(tiny)
    assert check.result("/x").checksum_ok is True
    bad = RdbStreamCheck("bad")
    bad.feed(b"*2\r\n$3\r\nSET")
    with pytest.raises(Exception, match="not an RDB file"):
        bad.result("/x")


def test_stream_check_refuses_an_empty_stream_and_a_crc_mismatch() -> None:
    with pytest.raises(ExtractError, match="is empty"):
        RdbStreamCheck("nothing").result("/x")
    data = bytearray(rdb_bytes(2000))
    data[1000] ^= 1
    check = RdbStreamCheck("flipped")
    check.feed(data)
    with pytest.raises(ExtractError, match="does not match the RDB's own CRC-64") as err:
        check.result("/x")
    assert err.value.retryable


def test_checksum_word() -> None:
    assert [checksum_word(v) for v in (True, None, False)] == ["ok", "absent (rdbchecksum no)", "BAD"]


def test_write_checked_writes_the_copy_atomically(tmp_path: Path) -> None:
    data = rdb_bytes(300_000)
    dest = tmp_path / "sub" / "dump.rdb"
    ex = write_checked((data[i:i + 4096] for i in range(0, len(data), 4096)), dest, "host:test")
    assert dest.read_bytes() == data and ex.path == str(dest) and ex.size == len(data) and ex.checksum_ok
    assert [p.name for p in dest.parent.iterdir()] == ["dump.rdb"]


def test_a_failing_source_leaves_nothing_on_disk(tmp_path: Path) -> None:
    data = rdb_bytes(100_000)

    def chunks():  # type: ignore[no-untyped-def]
        yield data[:50_000]
        raise ExtractError("the container went away", step="extract")

    with pytest.raises(ExtractError, match="went away"):
        write_checked(chunks(), tmp_path / "dump.rdb", "container x:/data/dump.rdb")
    assert not list(tmp_path.iterdir())


def test_the_verdict_sees_the_complete_copy_and_its_refusal_removes_it(tmp_path: Path) -> None:
    data = rdb_bytes(10_000)
    seen: list[bytes] = []

    def refuse(ex: Extracted) -> None:
        seen.append(Path(ex.path).read_bytes())
        raise ExtractError("refused by the verdict")

    with pytest.raises(ExtractError, match="refused by the verdict"):
        stage([data], "host:test", tmp_path / "dump.rdb", verdict=refuse)
    assert seen == [data] and not list(tmp_path.iterdir())
