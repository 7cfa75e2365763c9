"""The raw RESP connections' set-up, shared by verify's RawConnection and the SYNC stream: commands packed as
RESP, the set-up commands, their line replies split wherever reads cut them. No server (a socket pair)."""

from __future__ import annotations

import socket
import threading

import pytest

from elasticache_migrate.errors import SourceError
from elasticache_migrate.source.resp import (
    HandshakeReplies,
    encode_command,
    handshake,
    setup_commands,
)


def test_encode_command_is_resp() -> None:
    assert encode_command("REPLCONF", "capa", b"eof") == b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n"


def test_handshake_replies_split_anywhere() -> None:
    h = HandshakeReplies()
    got = h.feed(b"+O") + h.feed(b"K\r\n-NOPERM no\r") + h.feed(b"\n+OK\r\n")
    assert got == ["+OK", "-NOPERM no", "+OK"]


def test_handshake_replies_refuse_a_line_no_redis_would_send() -> None:
    with pytest.raises(SourceError, match="answered the replication handshake with") as e:
        HandshakeReplies().feed(b"HTTP/1.1 400 Bad Request" + b"x" * 1100)
    assert "Redis/Valkey server" in e.value.remedy and e.value.step == "sync"
    with pytest.raises(SourceError, match="answered the connection set-up of h:1 with") as e:
        HandshakeReplies("the connection set-up of h:1", step=None).feed(b"x" * 1100)
    assert e.value.step is None


def test_setup_commands_authenticate_first_then_select_then_name() -> None:
    assert setup_commands(None, None) == []
    assert setup_commands(None, "pw", db=2, name="n") == [("AUTH", "pw"), ("SELECT", 2), ("CLIENT", "SETNAME", "n")]
    assert setup_commands("migrator", "pw") == [("AUTH", "migrator", "pw")]
    assert setup_commands("migrator", None, db=0, name="n") == [("CLIENT", "SETNAME", "n")]  # no password: no AUTH


def _server(sock: socket.socket, answer: list[bytes], got: list[bytes]) -> None:
    """Read what the client sent, then answer in the given pieces (and close when told to by an empty one)."""
    got.append(sock.recv(65536))
    for piece in answer:
        if not piece:
            sock.close()
            return
        sock.sendall(piece)


def test_handshake_sends_every_command_in_one_write_and_reads_a_reply_each() -> None:
    client, server = socket.socketpair()
    got: list[bytes] = []
    t = threading.Thread(target=_server, args=(server, [b"+OK\r\n-NOPERM", b" no\r\n+OK\r\n"], got))
    t.start()
    with client:
        replies = handshake(client, [("AUTH", "pw"), ("SELECT", 1), ("CLIENT", "SETNAME", "n")])
    t.join()
    server.close()
    assert replies == ["+OK", "-NOPERM no", "+OK"]
    sent = encode_command("AUTH", "pw") + encode_command("SELECT", 1) + encode_command("CLIENT", "SETNAME", "n")
    assert got == [sent]


def test_handshake_cut_short_is_a_connection_error() -> None:
    client, server = socket.socketpair()
    t = threading.Thread(target=_server, args=(server, [b"+OK\r\n", b""], []))
    t.start()
    with client, pytest.raises(ConnectionError, match="closed the connection during the handshake"):
        handshake(client, [("AUTH", "pw"), ("CLIENT", "SETNAME", "n")])
    t.join()


def test_no_commands_no_traffic() -> None:
    client, server = socket.socketpair()
    with client, server:
        assert handshake(client, []) == []
