"""The replication stream's pure rules: parsing over chunks, offsets, SELECT, MULTI/EXEC, drops, refusals, TTLs."""

from __future__ import annotations

import pytest

from elasticache_migrate.errors import CatchUpError, StreamRefused
from elasticache_migrate.online.stream import CommandParser, Op, TargetCaps, Unit, UnitPlanner, units


def resp(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


OLD = TargetCaps(source_version=(3, 2), target_version=(7, 0))
NEW = TargetCaps(source_version=(7, 0), target_version=(7, 0))


def plan(caps: TargetCaps, *cmds: bytes, start: int = 100, at: int = 1_000_000) -> list[Unit]:
    return list(units([(b"".join(cmds), at)], start, caps))


def test_parser_splits_anywhere_and_counts_offsets() -> None:
    stream = resp("SET", "k", "v\r\nx") + resp("PING") + resp("INCR", "n")
    whole = CommandParser(1000).feed(stream, 5)
    assert [c.args for c in whole] == [(b"SET", b"k", b"v\r\nx"), (b"PING",), (b"INCR", b"n")]
    assert whole[-1].end_offset == 1000 + len(stream)
    assert whole[0].end_offset == 1000 + len(resp("SET", "k", "v\r\nx"))
    for step in (1, 2, 3, 7):
        p = CommandParser(1000)
        got = [c for i in range(0, len(stream), step) for c in p.feed(stream[i:i + step], 5)]
        assert got == whole
        assert p.pending_bytes == 0 and p.received_offset == 1000 + len(stream)


def test_parser_rejects_what_is_not_resp() -> None:
    with pytest.raises(CatchUpError, match="not RESP"):
        CommandParser(0).feed(b"+OK\r\n", 0)


def test_select_is_tracked_not_sent_and_multi_exec_is_one_unit() -> None:
    got = plan(NEW, resp("SELECT", "1"), resp("SET", "a", "1"), resp("MULTI"), resp("INCR", "a"),
               resp("SELECT", "0"), resp("HSET", "h", "f", "v"), resp("EXEC"), resp("PING"))
    assert got[0].ops == ()                         # SELECT alone: offset only
    assert got[1].ops == (Op(1, (b"SET", b"a", b"1")),) and not got[1].atomic
    assert got[2].atomic and got[2].ops == (Op(1, (b"INCR", b"a")), Op(0, (b"HSET", b"h", b"f", b"v")))
    assert got[3].ops == ()                         # PING dropped, its offset still counts
    assert got[-1].end_offset > got[2].end_offset


def test_multi_split_across_chunks_is_never_half() -> None:
    stream = resp("MULTI") + resp("SET", "a", "1") + resp("SET", "b", "2") + resp("EXEC")
    cut = len(resp("MULTI") + resp("SET", "a", "1")) + 3
    got = list(units([(stream[:cut], 1), (stream[cut:], 2)], 0, NEW))
    assert len(got) == 1 and got[0].atomic and len(got[0].ops) == 2 and got[0].end_offset == len(stream)


@pytest.mark.parametrize("cmd", [resp("REPLCONF", "GETACK", "*"), resp("PING"),
                                 resp("PUBLISH", "__sentinel__:hello", "10.0.0.1,26379,..."),
                                 resp("PUBLISH", "news", "x")])
def test_link_and_pubsub_traffic_is_dropped(cmd: bytes) -> None:
    assert [u.ops for u in plan(NEW, cmd)] == [()]


@pytest.mark.parametrize("name", ["CONFIG", "DEBUG", "SHUTDOWN", "SLAVEOF", "REPLICAOF", "SYNC", "PSYNC", "BGSAVE"])
def test_commands_elasticache_refuses_stop_the_stream(name: str) -> None:
    with pytest.raises(StreamRefused, match=name):
        plan(NEW, resp(name, "x"))


def test_cluster_mode_target_refuses_other_dbs() -> None:
    caps = TargetCaps((7, 0), (7, 0), multi_db=False)
    assert plan(caps, resp("SELECT", "0"), resp("SET", "a", "1"))[1].ops
    with pytest.raises(StreamRefused, match="db 2"):
        plan(caps, resp("SELECT", "2"), resp("SET", "a", "1"))


def test_relative_ttls_of_old_sources_become_absolute_at_receipt() -> None:
    t = 1_000_000
    got = [u.ops for u in plan(OLD, resp("EXPIRE", "a", "10"), resp("PEXPIRE", "b", "500"),
                               resp("SETEX", "c", "5", "v"), resp("PSETEX", "d", "50", "v"),
                               resp("SET", "e", "v", "EX", "2"), resp("SET", "f", "v", "NX", "px", "7"),
                               resp("SET", "g", "v"), at=t)]
    assert got == [
        (Op(0, (b"PEXPIREAT", b"a", b"1010000")),),
        (Op(0, (b"PEXPIREAT", b"b", b"1000500")),),
        (Op(0, (b"SET", b"c", b"v", b"PXAT", b"1005000")),),
        (Op(0, (b"SET", b"d", b"v", b"PXAT", b"1000050")),),
        (Op(0, (b"SET", b"e", b"v", b"PXAT", b"1002000")),),
        (Op(0, (b"SET", b"f", b"v", b"NX", b"PXAT", b"1000007")),),
        (Op(0, (b"SET", b"g", b"v")),),
    ]


def test_targets_before_6_2_get_set_then_pexpireat_atomically() -> None:
    caps = TargetCaps((3, 2), (5, 0))
    (u,) = plan(caps, resp("SETEX", "c", "5", "v"), at=1000)
    assert u.atomic and u.ops == (Op(0, (b"SET", b"c", b"v")), Op(0, (b"PEXPIREAT", b"c", b"6000")))


def test_sources_7_send_absolute_ttls_passed_as_they_are() -> None:
    cmd = resp("SET", "e", "v", "PXAT", "123")
    assert plan(NEW, cmd)[0].ops == (Op(0, (b"SET", b"e", b"v", b"PXAT", b"123")),)


def test_a_del_of_a_key_whose_stream_expiry_is_due_is_an_expiry_del() -> None:
    p = UnitPlanner(OLD)
    from elasticache_migrate.online.stream import Command

    def run(*args: str, at: int) -> Unit | None:
        return p.plan(Command(tuple(a.encode() for a in args), 0, at))

    run("SETEX", "s", "10", "v", at=0)
    run("SET", "p", "v", at=0)
    run("SETEX", "later", "100", "v", at=0)
    expiry = run("DEL", "s", at=10_050)
    assert expiry is not None and expiry.ops[0].expiry_del
    for key in ("p", "later"):                       # no TTL / TTL far ahead: the app deleted it
        u = run("DEL", key, at=10_050)
        assert u is not None and not u.ops[0].expiry_del
    run("SETEX", "r", "10", "v", at=0)
    run("SET", "r", "w", at=5_000)                    # SET without a TTL clears the expiry
    u = run("UNLINK", "r", at=10_050)
    assert u is not None and not u.ops[0].expiry_del


def test_stream_units_keep_state_across_reads() -> None:
    from elasticache_migrate.online.stream import StreamUnits

    su = StreamUnits(0, NEW)
    stream = resp("SELECT", "3") + resp("MULTI") + resp("SET", "a", "1") + resp("EXEC")
    assert len(su.feed(stream[:-5], 1)) == 1           # SELECT only; the MULTI is open, EXEC incomplete
    (unit,) = su.feed(stream[-5:], 2)
    assert unit.atomic and unit.ops == (Op(3, (b"SET", b"a", b"1")),) and unit.received_ms == 2
