"""A real Sentinel set on 127.0.0.1: a master, one replica and three Sentinels (quorum 2) of one server version.

    with SentinelSet(need("redis-3.2"), tmp_path) as s:
        plan source.redis = s.redis_connection()       # host/port = the first Sentinel, sentinels = the others
        s.failover()                                   # SENTINEL failover, waits until every Sentinel agrees
        s.stop_sentinel(0); s.start_sentinel(0)        # one Sentinel down and up again (same port, same config)
        s.stop_node(s.master_node()); s.start_node(n)  # a data node down/up (restarted from its rewritten config)

Timings are short so failovers are quick: ``down-after-milliseconds`` 1000, ``failover-timeout`` 5000. Data nodes
are `LocalRedisServer`\\ s on fixed ports (so Sentinels find them again after a restart) and restart from their
config file as Sentinel's CONFIG REWRITE left it, as a real host does. Sentinels run the same binary with
``--sentinel`` (Redis 3.x to Valkey 9); their config files are theirs to rewrite.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.testing.binaries import ServerBinary
from elasticache_migrate.testing.localredis import LocalRedisServer, terminate
from elasticache_migrate.testing.ports import free_port

__all__ = ["SentinelProcess", "SentinelSet", "wait_until"]

HOST = "127.0.0.1"
Address = tuple[str, int]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned); AssertionError naming ``what`` on timeout.

    Redis errors while polling count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = check()
            if got:
                return got
            last = got
        except (redis.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def _client(port: int, timeout: float = 2, password: str | None = None) -> redis.Redis:
    """RESP2 (Redis < 6 rejects HELLO), no retries, decoded replies."""
    return redis.Redis(host=HOST, port=port, protocol=2, socket_timeout=timeout, socket_connect_timeout=1,
                       retry=Retry(NoBackoff(), 0), decode_responses=True, password=password)


class SentinelProcess:
    """One ``redis-server --sentinel`` (or valkey) process on a fixed port; its config file survives restarts."""

    def __init__(self, binary: ServerBinary, workdir: Path, port: int, master_name: str, master: Address,
                 quorum: int, down_after_ms: int, failover_timeout_ms: int) -> None:
        self.binary, self.workdir, self.port = binary, workdir, port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "sentinel.conf"
        self.logfile = workdir / "sentinel.log"
        self.config_file.write_text(
            f"port {port}\nbind {HOST}\ndaemonize no\ndir \"{workdir}\"\nlogfile \"{self.logfile}\"\n"
            f"sentinel monitor {master_name} {master[0]} {master[1]} {quorum}\n"
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {master_name} 1\n")
        self._proc: subprocess.Popen[bytes] | None = None
        self.password: str | None = None

    @property
    def address(self) -> Address:
        return HOST, self.port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15) -> SentinelProcess:
        """Start it and wait for PING."""
        if self.running:
            return self
        with open(self.workdir / "sentinel.stdout", "ab") as out:
            self._proc = subprocess.Popen([str(self.binary.path), str(self.config_file), "--sentinel"],
                                          cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT)

        def up() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"Sentinel on {self.port} exited: {self.tail_log()}")
            with _client(self.port, password=self.password) as c:
                return bool(c.ping())

        wait_until(f"Sentinel {self.port} to answer PING", up, timeout)
        return self

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL; safe to repeat."""
        terminate(self._proc, timeout)

    def client(self) -> redis.Redis:
        """A RESP2 client to this Sentinel (decoded replies)."""
        return _client(self.port, password=self.password)

    def master_addr(self, name: str) -> Address | None:
        """``SENTINEL get-master-addr-by-name``."""
        with self.client() as c:
            reply = c.execute_command("SENTINEL", "get-master-addr-by-name", name)
        return (str(reply[0]), int(reply[1])) if reply else None

    def master_state(self, name: str) -> dict[str, str]:
        """``SENTINEL master <name>`` as a dict (flags, num-slaves, num-other-sentinels, ...)."""
        with self.client() as c:
            reply = c.execute_command("SENTINEL", "master", name)
        if isinstance(reply, dict):
            return {str(k): str(v) for k, v in reply.items()}
        return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply), 2)}

    def tail_log(self, n: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class SentinelSet:
    """A master, ``replicas`` replicas and ``sentinels`` Sentinels (quorum ``quorum``), all of ``binary``.

    Args:
        binary: The server of every node (``need("redis-3.2")``).
        workdir: Where each node and Sentinel gets its directory.
        master_name: The name the Sentinels monitor the master under.
        password: ``requirepass`` of the data nodes (then also ``masterauth``, and ``sentinel auth-pass``).
        sentinel_password: ``requirepass`` of the Sentinels (Sentinel 5.0.1+).
    """

    def __init__(self, binary: ServerBinary, workdir: Path, *, master_name: str = "appmaster", replicas: int = 1,
                 sentinels: int = 3, quorum: int = 2, down_after_ms: int = 1000, failover_timeout_ms: int = 5000,
                 password: str | None = None, sentinel_password: str | None = None) -> None:
        self.binary, self.workdir, self.master_name, self.password = binary, Path(workdir), master_name, password
        self.sentinel_password = sentinel_password
        # replicas sync at once (7.0 waits repl-diskless-sync-delay, 5 s, before a diskless full sync)
        auth = {"masterauth": password, "repl-diskless-sync-delay": "0"} if password else \
            {"repl-diskless-sync-delay": "0"}
        first = LocalRedisServer(binary, port=free_port(), workdir=self.workdir / "node0", password=password,
                                 config=dict(auth))
        self.nodes: list[LocalRedisServer] = [first] + [
            LocalRedisServer(binary, port=free_port(), workdir=self.workdir / f"node{i}", password=password,
                             config={"slaveof": f"{HOST} {first.port}", **auth})
            for i in range(1, replicas + 1)]
        self.sentinels: list[SentinelProcess] = [
            SentinelProcess(binary, self.workdir / f"sentinel{i}", free_port(), master_name, (HOST, first.port),
                            quorum, down_after_ms, failover_timeout_ms) for i in range(sentinels)]
        for s in self.sentinels:
            s.password = sentinel_password
            with open(s.config_file, "a") as f:
                if password:
                    f.write(f"sentinel auth-pass {master_name} {password}\n")
                if sentinel_password:  # Sentinel 5.0.1+: clients and the other Sentinels AUTH with it
                    f.write(f"requirepass {sentinel_password}\n")

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> SentinelSet:
        """Start every node and Sentinel; wait until each Sentinel sees the replicas and the other Sentinels."""
        for node in self.nodes:
            node.start()
        for s in self.sentinels:
            s.start()
        self.wait_settled(timeout)
        return self

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> SentinelSet:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def wait_settled(self, timeout: float = 30) -> Address:
        """Wait until every running Sentinel names the same master, which says it is master with every running
        replica synced (state online), and knows every running replica and Sentinel; the master's address."""
        running = [s for s in self.sentinels if s.running]
        live_nodes = [n for n in self.nodes if n.running]

        def settled() -> Address | None:
            masters = {s.master_addr(self.master_name) for s in running}
            if len(masters) != 1:
                return None
            (master,) = masters
            if master is None:
                return None
            node = self.node_at(master)
            if node is None or not node.running:
                return None
            with node.client(decode_responses=True, socket_timeout=2) as c:
                info = c.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()
                      and isinstance(v, dict) and v.get("state") == "online"]
            if info.get("role") != "master" or len(online) < len(live_nodes) - 1:
                return None
            for s in running:
                state = s.master_state(self.master_name)
                if ("down" in state.get("flags", "") or int(state.get("num-slaves", 0)) < len(live_nodes) - 1
                        or int(state.get("num-other-sentinels", 0)) < len(running) - 1):
                    return None
            return master

        return wait_until("the Sentinel set to settle", settled, timeout)  # type: ignore[no-any-return]

    # --- who is who ---------------------------------------------------------------------------------------------

    @property
    def sentinel_addresses(self) -> list[Address]:
        return [s.address for s in self.sentinels]

    def redis_connection(self, *, first: int = 0, **extra: Any) -> dict[str, Any]:
        """The plan's ``source.redis`` for this set: Sentinel ``first`` as host/port, the others in ``sentinels``."""
        order = [self.sentinels[first]] + [s for i, s in enumerate(self.sentinels) if i != first]
        return {"host": HOST, "port": order[0].port, "sentinel_master": self.master_name,
                "sentinels": [f"{HOST}:{s.port}" for s in order[1:]], **extra}

    def current_master(self) -> Address:
        """The master the first running Sentinel names."""
        for s in self.sentinels:
            if s.running:
                addr = s.master_addr(self.master_name)
                if addr:
                    return addr
        raise AssertionError("no running Sentinel names a master")

    def node_at(self, address: Address) -> LocalRedisServer | None:
        return next((n for n in self.nodes if (n.host, n.port) == (address[0], address[1])), None)

    def master_node(self) -> LocalRedisServer:
        node = self.node_at(self.current_master())
        assert node is not None, "the Sentinels name a master that is not one of the set's nodes"
        return node

    def replica_nodes(self) -> list[LocalRedisServer]:
        master = self.master_node()
        return [n for n in self.nodes if n is not master]

    # --- events -------------------------------------------------------------------------------------------------

    def failover(self, timeout: float = 30, *, settle: bool = False) -> Address:
        """``SENTINEL failover`` through a running Sentinel; the new master once every running Sentinel names it
        and it says it is master. ``settle``: also wait until the old master has rejoined as its replica and every
        Sentinel counts it (up to ~10 s more: Sentinels re-read a replica's INFO every 10 s)."""
        old = self.current_master()
        sentinel = next(s for s in self.sentinels if s.running)
        with sentinel.client() as c:
            c.execute_command("SENTINEL", "failover", self.master_name)

        def promoted() -> Address | None:
            masters = {s.master_addr(self.master_name) for s in self.sentinels if s.running}
            new = masters.pop() if len(masters) == 1 else None
            node = self.node_at(new) if new and new != old else None
            if node is None:
                return None
            with node.client(decode_responses=True, socket_timeout=2) as c:
                return new if c.info("replication").get("role") == "master" else None

        new: Address = wait_until("a new master every Sentinel names", promoted, timeout)
        return self.wait_settled(timeout) if settle else new

    def stop_node(self, node: LocalRedisServer) -> None:
        node.stop()

    def start_node(self, node: LocalRedisServer) -> None:
        """Restart a data node from its config file as it is now (what Sentinel's CONFIG REWRITE left there)."""
        node.start(keep_config=True)

    def stop_sentinel(self, index: int) -> None:
        self.sentinels[index].stop()

    def start_sentinel(self, index: int) -> None:
        self.sentinels[index].start()


def accepts_writes(node: LocalRedisServer, key: str = "probe:writable") -> bool:
    """Whether ``node`` takes a write now (False on NOREPLICAS, the fence, or READONLY, a replica)."""
    with node.client(decode_responses=True, socket_timeout=3) as c:
        try:
            c.set(key, "1")
            return True
        except redis.ResponseError:
            return False
