"""The pseudo-replica link against real servers (Redis 3.2, 6.2, 7.0, Valkey 8.1; disk-based and diskless, with and
without AUTH) while a writer runs: the RDB received parses with the project's reader, every SET lands in exactly
one of the RDB and the spooled stream (the stream's SETs are exactly the writes after the FULLRESYNC offset, in
order), the master keeps our link online with a growing offset past its repl-timeout (ACKs every second), a link
killed by the master surfaces as ReplicaLinkLost with where to resume, and ``PSYNC <replid> <offset+1>`` gets
``+CONTINUE`` and the writes that follow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest

from elasticache_migrate.errors import ReplicaLinkLost
from elasticache_migrate.rdb.scan import scan_rdb
from elasticache_migrate.source.replica_link import ReplicaLink
from elasticache_migrate.source.replica_protocol import Continue, FullResync, ReplicaPosition
from elasticache_migrate.source.spool import Spool
from elasticache_migrate.testing.localredis import LocalRedisServer
from tests.conftest import need

pytestmark = pytest.mark.slow

PRELOAD = 2000
REPL_TIMEOUT = 5


class Writer:
    """SET w:<i> in order, 50 per round trip, until stopped."""

    def __init__(self, server: LocalRedisServer) -> None:
        self.server, self.next = server, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.client() as r:
            while not self._stop.is_set():
                p = r.pipeline(transaction=False)
                for i in range(self.next, self.next + 50):
                    p.set(f"w:{i}", "x" * 100)
                p.execute()
                self.next += 50
                time.sleep(0.002)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _set_indices(spool: Spool, start: int) -> list[int]:
    """The ``i`` of every ``SET w:<i>`` in the spooled stream after ``start``, in order."""
    reader, out = hiredis.Reader(), list[int]()
    for data in spool.read(start):
        reader.feed(data)
        while (cmd := reader.gets()) is not False:
            if isinstance(cmd, list) and cmd[0].upper() == b"SET" and cmd[1].startswith(b"w:"):
                out.append(int(cmd[1][2:]))
    return out


def _info(server: LocalRedisServer) -> dict[str, object]:
    with server.client() as r:
        return dict(r.info("replication"))


def _wait_caught_up(server: LocalRedisServer, link: ReplicaLink, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (link.offset or 0) >= int(_info(server)["master_repl_offset"]):  # type: ignore[call-overload]
            return
        time.sleep(0.05)
    raise AssertionError(f"the link stands at {link.offset}, the master at {_info(server)['master_repl_offset']}")


@pytest.fixture(params=[
    ("redis-3.2", {}, None),                                                            # disk-based
    ("redis-6.2", {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0"}, "s3cret"),  # diskless, AUTH
    ("redis-7.0", {"repl-diskless-sync": "no"}, None),                                  # disk-based
    ("valkey-8.1", {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0"}, None),  # diskless
], ids=lambda p: p[0])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LocalRedisServer, str | None]]:
    binary, config, password = request.param
    server = LocalRedisServer(need(binary), workdir=tmp_path / "source", password=password,
                              config={**config, "repl-timeout": str(REPL_TIMEOUT)}).start()
    try:
        with server.client() as r:
            p = r.pipeline(transaction=False)
            for i in range(PRELOAD):
                p.set(f"p:{i}", i)
            p.execute()
        yield server, password
    finally:
        server.stop()


def test_seed_tail_ack_drop_and_resume_while_writes_go_on(source: tuple[LocalRedisServer, str | None],
                                                          tmp_path: Path) -> None:
    server, password = source
    link = ReplicaLink("127.0.0.1", server.port, password=password, name="elasticache-migrate:test", timeout=15)
    rdb_path = tmp_path / "seed.rdb"
    with Writer(server) as writer:
        time.sleep(0.3)
        answer = link.connect()
        assert isinstance(answer, FullResync)
        with open(rdb_path, "wb") as f:
            size = link.receive_rdb(f.write)
        spool = Spool(tmp_path / "spool", answer.offset, segment_bytes=1 << 20)
        link.start(spool)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < REPL_TIMEOUT + 3:  # past repl-timeout: only our ACKs keep the link
            info = _info(server)
            samples.append((info.get("connected_slaves"), info.get("slave0")))
            time.sleep(1)
    _wait_caught_up(server, link)
    written = writer.next

    summary = scan_rdb(rdb_path)
    assert summary.size == size and summary.checksum_ok is not False and summary.complete
    # the first sample may still show the transfer's end (a diskless master puts the replica online on the ACK
    # after it has reaped its fork); from then on, online for longer than repl-timeout
    samples = samples[1:]
    assert all(n == 1 and isinstance(s, dict) and s["state"] == "online" for n, s in samples), samples
    offsets = [int(s["offset"]) for _, s in samples]  # type: ignore[index]
    assert offsets == sorted(offsets) and offsets[-1] > offsets[0], offsets
    assert link.alive and link.acks >= REPL_TIMEOUT + 2

    # every write is in exactly one of the RDB (the first k) and the stream (the rest, in order)
    seen = _set_indices(spool, answer.offset)
    in_rdb = summary.keys - PRELOAD
    assert seen == list(range(in_rdb, written)), (in_rdb, seen[:3], seen[-3:], written)
    assert len(seen) > 1000 and spool.committed_offset == link.offset
    assert sum((tmp_path / "spool" / f).stat().st_size for f in (p.name for p in (tmp_path / "spool").iterdir())) \
        == spool.committed_offset - answer.offset
    assert len(spool.segments()) > 1  # rotated at 1 MiB: on disk, not in memory

    # the master cuts the link: a typed, retryable error saying where to resume
    with server.client() as r:
        r.execute_command("CLIENT", "KILL", "TYPE", "slave")
    with pytest.raises(ReplicaLinkLost) as lost:
        deadline = time.monotonic() + 5
        while link.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        link.stop()
    err = lost.value
    assert err.retryable and err.replid == answer.replid and err.offset == spool.committed_offset
    spool.close()

    # resume: the backlog holds the offset, so +CONTINUE and the writes after it, appended to the same spool
    spool = Spool(tmp_path / "spool", err.offset)
    again = ReplicaLink("127.0.0.1", server.port, password=password, name="elasticache-migrate:test")
    assert err.replid is not None
    cont = again.connect(ReplicaPosition(err.replid, err.offset))
    assert isinstance(cont, Continue)
    again.start(spool)
    with server.client() as r:
        for i in range(written, written + 500):
            r.set(f"w:{i}", "y")
    _wait_caught_up(server, again)
    position = again.stop()
    spool.close()
    assert position is not None and position.offset == spool.committed_offset
    assert _set_indices(spool, answer.offset) == list(range(in_rdb, written + 500))


def test_without_acks_the_master_drops_the_link(tmp_path: Path) -> None:
    """The control for the test above: the same link ACKing only every 60 s is dropped after repl-timeout."""
    server = LocalRedisServer(need("redis-3.2"), workdir=tmp_path / "source",
                              config={"repl-timeout": str(REPL_TIMEOUT)}).start()
    try:
        link = ReplicaLink("127.0.0.1", server.port, name="elasticache-migrate:test", ack_interval=60)
        answer = link.connect()
        assert isinstance(answer, FullResync)
        link.receive_rdb(lambda _piece: None)
        link.start(Spool(tmp_path / "spool", answer.offset))
        deadline = time.monotonic() + REPL_TIMEOUT + 10
        while link.alive and time.monotonic() < deadline:
            time.sleep(0.2)
        with pytest.raises(ReplicaLinkLost, match="closed the connection"):
            link.stop()
    finally:
        server.stop()


def test_a_resume_past_the_backlog_gets_a_full_resync(tmp_path: Path) -> None:
    """When the backlog no longer holds the offset, PSYNC <replid> <offset+1> answers +FULLRESYNC: a fresh seed."""
    server = LocalRedisServer(need("redis-7.0"), workdir=tmp_path / "source",
                              config={"repl-backlog-size": "16384", "save": "",
                                      "repl-diskless-sync-delay": "0"}).start()
    try:
        link = ReplicaLink("127.0.0.1", server.port, name="elasticache-migrate:test")
        answer = link.connect()
        assert isinstance(answer, FullResync)
        link.receive_rdb(lambda _piece: None)
        position = link.position
        link.close()
        with server.client() as r:
            for i in range(200):
                r.set(f"k:{i}", "x" * 1000)  # 200 kB: past the 16 kB backlog
        assert position is not None
        again = ReplicaLink("127.0.0.1", server.port, name="elasticache-migrate:test")
        fresh = again.connect(position)
        assert isinstance(fresh, FullResync) and fresh.offset > position.offset
        assert again.receive_rdb(lambda _piece: None) > 0
        again.close()
    finally:
        server.stop()
