"""The pure half of the sync transfer: SYNC's reply framing, the handshake, refusals, and the decisions the task
makes (which path, whether to BGSAVE first, what the snapshot record is). No server."""

from __future__ import annotations

import random

import pytest

from elasticache_migrate.errors import SnapshotError, SourceError
from elasticache_migrate.rdb import crc64_jones
from elasticache_migrate.source.replication import (
    EOF_MARK_LEN,
    HandshakeReplies,
    SyncReply,
    encode_command,
    handshake_commands,
    refusal,
    restarted_since_pause,
    sync_strategy,
    synced_snapshot,
    transfer_mode,
)
from elasticache_migrate.state import QuiesceState, ServerInfo, Snapshot, SyncSource, version_tuple

MARK = b"7043e5caf5cb300e441246df9379303aecfc5dfb"


def rdb_bytes(n: int = 5000, seed: int = 1) -> bytes:
    """A syntactically plausible RDB: header, random body, 0xFF, and the CRC-64 of all that."""
    body = b"REDIS0010" + random.Random(seed).randbytes(n) + b"\xff"
    return body + crc64_jones(body).to_bytes(8, "little")


def feed_all(reply: SyncReply, wire: bytes, cuts: list[int]) -> bytes:
    """Feed ``wire`` cut at ``cuts``; what the reply passed on as payload."""
    out = bytearray()
    start = 0
    for end in [*cuts, len(wire)]:
        for piece in reply.feed(wire[start:end]):
            out += piece
        start = end
    return bytes(out)


def random_cuts(n: int, seed: int, pieces: int = 30) -> list[int]:
    return sorted(random.Random(seed).sample(range(1, n), min(pieces, n - 1)))


# ------------------------------------------------------------------------------------------------ framing

def test_disk_based_reply_after_keepalives_in_any_chunking() -> None:
    payload = rdb_bytes()
    wire = b"\n\n\n" + b"$%d\r\n" % len(payload) + payload
    for seed in range(20):
        reply = SyncReply()
        assert feed_all(reply, wire, random_cuts(len(wire), seed)) == payload
        assert reply.done and reply.framing == "disk" and reply.size == len(payload) and reply.keepalives == 3


def test_diskless_reply_holds_back_the_mark_wherever_reads_split_it() -> None:
    payload = rdb_bytes()
    wire = b"\n" + b"$EOF:" + MARK + b"\r\n" + payload + MARK
    # every split point inside and around the trailing mark, and random chunkings
    tail = len(wire) - EOF_MARK_LEN
    for cuts in [[tail + d] for d in range(-45, 40)] + [random_cuts(len(wire), s) for s in range(20)]:
        reply = SyncReply()
        assert feed_all(reply, wire, cuts) == payload, cuts
        assert reply.done and reply.framing == "diskless" and reply.size is None
        assert reply.received == len(payload)


def test_diskless_reply_fed_byte_by_byte() -> None:
    payload = rdb_bytes(200)
    wire = b"$EOF:" + MARK + b"\r\n" + payload + MARK
    reply = SyncReply()
    assert feed_all(reply, wire, list(range(1, len(wire)))) == payload and reply.done


def test_not_done_until_the_mark_or_the_length() -> None:
    payload = rdb_bytes(100)
    diskless = SyncReply()
    diskless.feed(b"$EOF:" + MARK + b"\r\n" + payload + MARK[:-1])
    disk = SyncReply()
    disk.feed(b"$%d\r\n" % len(payload) + payload[:-1])
    assert not diskless.done and not disk.done and disk.received == len(payload) - 1


def test_bytes_after_a_disk_based_payload_are_not_payload() -> None:
    # a master without rdb-only would go on with its command stream: it is not part of the RDB
    reply = SyncReply()
    out = feed_all(reply, b"$3\r\nabc*1\r\n$4\r\nPING\r\n", [])
    assert out == b"abc" and reply.done and reply.feed(b"more") == []


def test_payload_pieces_are_views_not_copies() -> None:
    data = b"$%d\r\n" % 10 + b"0123456789"
    pieces = SyncReply().feed(data)
    assert [bytes(p) for p in pieces] == [b"0123456789"] and all(isinstance(p, memoryview) for p in pieces)


def test_an_error_reply_to_sync_is_the_masters_words_with_a_remedy() -> None:
    with pytest.raises(SourceError) as e:
        SyncReply().feed(b"-NOPERM this user has no permissions to run the 'sync' command\r\n")
    assert "may not run SYNC" in e.value.message and "+sync" in e.value.remedy and not e.value.retryable


@pytest.mark.parametrize("wire", [b"+FULLRESYNC abc 0\r\n", b"$EOF:short\r\n", b"$12x\r\n", b"x" * 2000])
def test_anything_else_is_refused_clearly(wire: bytes) -> None:
    with pytest.raises(SourceError, match="answered SYNC with"):
        SyncReply().feed(wire)


def test_handshake_replies_split_anywhere() -> None:
    h = HandshakeReplies()
    got = h.feed(b"+O") + h.feed(b"K\r\n-NOPERM no\r") + h.feed(b"\n+OK\r\n")
    assert got == ["+OK", "-NOPERM no", "+OK"]


# ------------------------------------------------------------------------------------------- handshake

def test_handshake_authenticates_first_then_names_itself_then_capabilities() -> None:
    assert handshake_commands(None, None, "elasticache-migrate:m1") == [
        ("CLIENT", "SETNAME", "elasticache-migrate:m1"), ("REPLCONF", "capa", "eof"), ("REPLCONF", "rdb-only", "1")]
    assert handshake_commands(None, "pw", "n")[0] == ("AUTH", "pw")
    assert handshake_commands("migrator", "pw", "n")[0] == ("AUTH", "migrator", "pw")


def test_encode_command_is_resp() -> None:
    assert encode_command("REPLCONF", "capa", b"eof") == b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n"


@pytest.mark.parametrize("text, kind, says, retry", [
    ("NOPERM this user has no permissions to run the 'replconf' command", SourceError, "ACL SETUSER mig +sync", False),
    ("NOPERM User mig has no permissions to run the 'sync' command", SourceError, "ACL SETUSER mig +sync", False),
    ("WRONGPASS invalid username-password pair or user is disabled.", SourceError, "password", False),
    ("NOAUTH Authentication required.", SourceError, "password", False),
    ("ERR Unrecognized REPLCONF option: rdb-only", SourceError, "staged", False),
    ("ERR unknown command 'SYNC', with args beginning with: ", SourceError, "staged", False),
    ("LOADING Redis is loading the dataset in memory", SourceError, "", True),
    ("ERR something new", SnapshotError, "staged", False),
])
def test_refusals_map_to_the_error_tree_with_a_remedy(text: str, kind: type, says: str, retry: bool) -> None:
    err = refusal("SYNC", text, "mig")
    assert type(err) is kind and says in err.remedy and err.retryable is retry and text in err.message


# ---------------------------------------------------------------------------------------------- decisions

@pytest.mark.parametrize("setting, server, mode", [
    ("auto", "redis 7.0.15", "sync"), ("auto", "valkey 8.1.8", "sync"), ("auto", "redis 6.2.14", "staged"),
    ("auto", "redis 3.2.6", "staged"), ("auto", "garbled", "staged"), ("sync", "redis 6.2.14", "sync"),
    ("stream", "redis 7.0.15", "stream"), ("staged", "valkey 8.1.8", "staged"),
])
def test_transfer_mode(setting: str, server: str, mode: str) -> None:
    flavor, _, version = server.partition(" ")
    assert transfer_mode(setting, ServerInfo(flavor, version_tuple(version))) == mode


def test_server_info_from_info_server() -> None:
    valkey = ServerInfo.from_info({"redis_version": "7.2.4", "valkey_version": "8.1.8"})
    assert valkey == ServerInfo("valkey", (8, 1, 8))
    assert ServerInfo.from_info({"redis_version": "7.0"}) == ServerInfo("redis", (7, 0, 0))
    assert ServerInfo.from_info({}) == ServerInfo("redis", (0, 0, 0))
    assert str(ServerInfo("redis", (3, 2, 6))) == "redis 3.2.6"


DEFAULTS_70 = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "5", "save": "3600 1 300 100 60 10000"}


@pytest.mark.parametrize("changes, config, at_risk, presave, tune", [
    # save rules and changes since the last save: the master is asked for a disk-based SYNC (its own BGSAVE)
    (42, DEFAULTS_70, True, False, {"repl-diskless-sync": "no"}),
    # nothing to save (rules need >= 1 change, and writes are paused), or no rules: diskless, without the delay
    (0, DEFAULTS_70, False, False, {"repl-diskless-sync-delay": "0"}),
    (42, {**DEFAULTS_70, "save": ""}, False, False, {"repl-diskless-sync-delay": "0"}),
    # delay already 0: nothing to change
    (0, {**DEFAULTS_70, "repl-diskless-sync-delay": "0"}, False, False, {}),
    # disk-based master: its SYNC is a BGSAVE already
    (42, {**DEFAULTS_70, "repl-diskless-sync": "no"}, False, False, {}),
    # CONFIG unavailable: rules and framing unknown; with changes a BGSAVE first, nothing to tune
    (42, dict.fromkeys(DEFAULTS_70), True, True, {}),
    (0, dict.fromkeys(DEFAULTS_70), False, False, {}),
])
def test_sync_strategy(changes: int, config: dict, at_risk: bool, presave: bool, tune: dict) -> None:
    s = sync_strategy(changes, config)
    assert (s.at_risk, s.presave, s.tune) == (at_risk, presave, tune)
    assert ("void verify's proof" in s.why) is at_risk


BASE = Snapshot(last_save_time=1000, rdb_saves=3, seconds=0.0, changes_since_save=42)


def info(**kw: int) -> dict[str, int]:
    return {"rdb_last_save_time": 1000, "rdb_saves": 3, "rdb_changes_since_last_save": 42, **kw}


def test_a_diskless_snapshot_keeps_the_record_from_before_sync() -> None:
    snap = synced_snapshot("diskless", BASE, info(), 2.5)
    assert (snap.last_save_time, snap.rdb_saves, snap.changes_since_save, snap.seconds) == (1000, 3, 42, 2.5)


@pytest.mark.parametrize("after", [info(rdb_saves=4, rdb_last_save_time=1010), info(rdb_changes_since_last_save=43)])
def test_a_save_or_a_write_during_a_diskless_transfer_is_retried(after: dict[str, int]) -> None:
    with pytest.raises(SnapshotError, match="during the transfer") as e:
        synced_snapshot("diskless", BASE, after, 1.0)
    assert e.value.retryable


def test_a_disk_based_snapshot_is_the_masters_bgsave() -> None:
    snap = synced_snapshot("disk", BASE, info(rdb_saves=4, rdb_last_save_time=1010, rdb_changes_since_last_save=0), 1)
    assert (snap.last_save_time, snap.rdb_saves, snap.changes_since_save) == (1010, 4, 0)
    with pytest.raises(SnapshotError, match="no new save"):
        synced_snapshot("disk", BASE, info(), 1.0)


QUIESCED = QuiesceState(mode="client-pause-write", paused_at=10_000.0, pause_expires_at=10_600.0,
                        server=ServerInfo("redis", (7, 0, 15)))


@pytest.mark.parametrize("server, seen, now, restarted", [
    ({"run_id": "a" * 40, "uptime_in_seconds": 5000}, None, 10_100.0, None),             # up since long before
    ({"run_id": "b" * 40, "uptime_in_seconds": 30}, None, 10_100.0, "up 30s"),           # started after the pause
    ({"run_id": "b" * 40, "uptime_in_seconds": 1}, {"paused_at": 10_000.0, "run_id": "a" * 40}, 10_001.0,
     "run_id changed"),                                                                  # a restart within seconds
    ({"run_id": "a" * 40, "uptime_in_seconds": 1}, {"paused_at": 10_000.0, "run_id": "a" * 40}, 10_001.0, None),
    ({"run_id": "b" * 40, "uptime_in_seconds": 1}, {"paused_at": 9_000.0, "run_id": "a" * 40}, 10_001.0, None),
])
def test_restarted_since_pause(server: dict, seen: dict | None, now: float, restarted: str | None) -> None:
    why = restarted_since_pause(QUIESCED, server, SyncSource(**seen) if seen else None, now)
    assert (why is None) if restarted is None else (why is not None and restarted in why)
    assert restarted_since_pause(None, server, SyncSource(**seen) if seen else None, now) is None  # never quiesced
