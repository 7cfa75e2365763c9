"""The pseudo-replica's framing and spool, without a server: PSYNC answers, the RDB then the stream split at any
read boundary (disk and diskless, the end mark split across reads), segment names, the spool read back from any
offset across rotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticache_migrate.errors import SourceError
from elasticache_migrate.source.replica_protocol import (
    Continue,
    FullResync,
    RdbThenStream,
    ReplicaPosition,
    ack_command,
    parse_psync_line,
    psync_command,
    replica_handshake_commands,
)
from elasticache_migrate.source.spool import Spool, segment_name, segment_start

RDB = b"REDIS0009" + bytes(range(256)) * 3 + b"\xff12345678"
STREAM = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
MARK = b"0123456789abcdef0123456789abcdef01234567"


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    out, prev = [], 0
    for c in [*cuts, len(data)]:
        out.append(data[prev:c])
        prev = c
    return [p for p in out if p]


def _run(wire: bytes, cuts: list[int]) -> tuple[bytes, bytes]:
    f = RdbThenStream()
    rdb, stream = b"", b""
    for part in _split(wire, cuts):
        pieces, after = f.feed(part)
        rdb += b"".join(bytes(p) for p in pieces)
        stream += bytes(after)
    assert f.done
    return rdb, stream


def test_psync_answers() -> None:
    assert parse_psync_line("+FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 1234") == FullResync(
        "8de1787ba490483314a4d30f1c628bc5025eb761", 1234)
    assert parse_psync_line("+CONTINUE") == Continue(None)
    assert parse_psync_line("+CONTINUE abc") == Continue("abc")
    with pytest.raises(SourceError, match=r"may not run PSYNC.*\+psync \+replconf"):
        parse_psync_line("-NOPERM this user has no permissions to run the 'psync' command", "u")
    with pytest.raises(SourceError, match="not a replication stream"):
        parse_psync_line("+OK")


def test_commands() -> None:
    assert psync_command(None) == ("PSYNC", "?", -1)
    assert psync_command(ReplicaPosition("r", 99)) == ("PSYNC", "r", 100)
    assert ack_command(42) == b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n42\r\n"
    cmds = replica_handshake_commands("u", "p", "me", listening_port=7000)
    assert cmds[0] == ("AUTH", "u", "p")
    assert ("REPLCONF", "listening-port", 7000) in cmds and cmds[-1] == ("REPLCONF", "capa", "eof", "capa", "psync2")
    assert replica_handshake_commands(None, None, "me")[0] == ("CLIENT", "SETNAME", "me")


@pytest.mark.parametrize("cuts", [[], [1], [3], [8], [9, 10], [20, 400], [len(RDB) + 7], [len(RDB) + 8],
                                  [len(RDB) + 9, len(RDB) + 12]])
def test_disk_payload_then_stream_at_any_cut(cuts: list[int]) -> None:
    wire = b"\n\n" + b"$%d\r\n" % len(RDB) + RDB + STREAM
    assert _run(wire, [c + 2 for c in cuts]) == (RDB, STREAM)


@pytest.mark.parametrize("cuts", [[], [3], [48], [50, 60], [len(RDB) + 47], [len(RDB) + 47 + 20],
                                  [len(RDB) + 47 + 39], [len(RDB) + 47 + 1, len(RDB) + 47 + 2]])
def test_diskless_mark_split_across_reads(cuts: list[int]) -> None:
    wire = b"$EOF:" + MARK + b"\r\n" + RDB + MARK
    assert _run(wire, cuts) == (RDB, b"")


def test_diskless_stream_after_the_mark_read() -> None:
    f = RdbThenStream()
    pieces, after = f.feed(b"$EOF:" + MARK + b"\r\n" + RDB + MARK)
    assert b"".join(bytes(p) for p in pieces) == RDB and f.done and not len(after)
    assert f.feed(STREAM) == ([], memoryview(STREAM))


def test_segment_names_sort_by_offset() -> None:
    assert segment_name(7) == "00000000000000000007.resp"
    assert segment_start(segment_name(123456789)) == 123456789
    assert segment_start("x.resp") is None and segment_start("00000000000000000007.tmp") is None
    assert sorted([segment_name(10), segment_name(9)]) == [segment_name(9), segment_name(10)]


def test_spool_reads_back_from_any_offset_across_segments(tmp_path: Path) -> None:
    data = bytes(i % 251 for i in range(10_000))
    with Spool(tmp_path, 1000, segment_bytes=1024, fsync="never") as s:
        for i in range(0, len(data), 333):
            s.append(data[i:i + 333])
        assert s.committed_offset == 11_000
        assert s.segments()[:3] == [1000, 2024, 3048]
        for start in (1000, 1001, 2024, 2500, 10_999, 11_000):
            assert b"".join(s.read(start, chunk=100)) == data[start - 1000:]
        assert b"".join(s.read(1500, until=3100)) == data[500:2100]
        with pytest.raises(ValueError):
            list(s.read(999))
    with Spool(tmp_path, 11_000, segment_bytes=1024) as again:  # a restart carries on after the last byte
        assert again.committed_offset == 11_000 and again.first_offset == 1000
        again.append(b"more")
        assert again.durable_offset == again.committed_offset or again.fsync == "interval"
        assert b"".join(again.read(10_990)) == data[-10:] + b"more"
    with pytest.raises(ValueError, match="holds offsets"):
        Spool(tmp_path, 50)
