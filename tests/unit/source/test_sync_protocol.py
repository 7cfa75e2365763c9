"""The pure half of the sync transfer's wire protocol: SYNC's reply framing, the handshake's commands, refusals.
No server."""

from __future__ import annotations

import random

import pytest

from elasticache_migrate.errors import SnapshotError, SourceError
from elasticache_migrate.rdb import crc64_jones
from elasticache_migrate.source.sync_protocol import EOF_MARK_LEN, SyncReply, handshake_commands, refusal

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


# ------------------------------------------------------------------------------------------- handshake

def test_handshake_authenticates_first_then_names_itself_then_capabilities() -> None:
    assert handshake_commands(None, None, "elasticache-migrate:m1") == [
        ("CLIENT", "SETNAME", "elasticache-migrate:m1"), ("REPLCONF", "capa", "eof"), ("REPLCONF", "rdb-only", "1")]
    assert handshake_commands(None, "pw", "n")[0] == ("AUTH", "pw")
    assert handshake_commands("migrator", "pw", "n")[0] == ("AUTH", "migrator", "pw")


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
