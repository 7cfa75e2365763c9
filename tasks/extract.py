"""extract: copy the RDB the source just wrote to local disk, streaming, checking it as it goes.

Two sources of the file (the seam): a Docker container, read through the Docker API's archive stream
(``get_archive``), and a file on this host. Both yield chunks; :func:`write_checked` writes them to disk
while computing SHA-256 and Redis' CRC-64, and refuses a file whose header is not an RDB's before
writing more than the first chunk.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prefect import task

from elasticache_migrate.containers import docker_client, docker_errors
from elasticache_migrate.errors import ExtractError, SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.rdb import Crc64Jones, RdbFormatError, read_header
from elasticache_migrate.source.connection import source_client
from elasticache_migrate.state import Extracted
from tasks.log import run_logger
from tasks.retry import IO_RETRIES

__all__ = [
    "Extracted",
    "RdbSource",
    "DockerRdbSource",
    "HostRdbSource",
    "IterStream",
    "RdbStreamCheck",
    "write_checked",
    "rdb_source_for",
    "rdb_path_on_server",
    "extract",
]

CHUNK = 1 << 20


class RdbSource(Protocol):
    """Where the RDB file comes from."""

    def describe(self, path: str) -> str:
        """Human description of the file's location."""
        ...

    def open(self, path: str) -> tuple[int | None, Iterator[bytes]]:
        """The file's size (if known before reading) and its bytes, in order."""
        ...


class IterStream(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, it: Iterable[bytes]) -> None:
        self._it = iter(it)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class DockerRdbSource:
    """The RDB inside a container, read through the Docker API (works on stopped containers and volumes)."""

    def __init__(self, container: str, docker_host: str | None = None) -> None:
        self.name = container
        with docker_errors("extract", ExtractError, f"Docker engine {docker_host or '(default)'}"):
            self.client = docker_client(docker_host)
            self.container = self.client.containers.get(container)

    def describe(self, path: str) -> str:
        return f"container {self.name}:{path}"

    def open(self, path: str) -> tuple[int | None, Iterator[bytes]]:
        with docker_errors("extract", ExtractError, self.describe(path)):
            stream, stat = self.container.get_archive(path, chunk_size=CHUNK)
        return (int(stat.get("size", 0)) or None), self._member(stream, path)

    def _member(self, stream: Iterable[bytes], path: str) -> Iterator[bytes]:
        """The bytes of the one file in the archive stream."""
        with docker_errors("extract", ExtractError, self.describe(path)):
            tar = tarfile.open(fileobj=io.BufferedReader(IterStream(stream), CHUNK), mode="r|")
            member = tar.next()
            if member is None or not member.isfile():
                raise ExtractError(f"{self.describe(path)} is not a regular file",
                                   remedy="point source.rdb_path at the RDB file itself", step="extract")
            f = tar.extractfile(member)
            assert f is not None
            while True:
                block = f.read(CHUNK)
                if not block:
                    break
                yield block


class HostRdbSource:
    """The RDB as a file on this host."""

    def describe(self, path: str) -> str:
        return f"host:{path}"

    def open(self, path: str) -> tuple[int | None, Iterator[bytes]]:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise ExtractError(f"RDB file {path} does not exist on this host",
                               remedy="set source.rdb_path, or check the server's `dir`/`dbfilename`",
                               step="extract") from exc
        return os.fstat(f.fileno()).st_size, self._read(f)

    @staticmethod
    def _read(f: Any) -> Iterator[bytes]:
        with f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    return
                yield block


def rdb_source_for(plan: MigrationPlan) -> RdbSource:
    """The RdbSource the plan names."""
    if plan.source.kind == "docker":
        assert plan.source.container
        return DockerRdbSource(plan.source.container, plan.source.docker_host)
    return HostRdbSource()


def rdb_path_on_server(plan: MigrationPlan) -> str:
    """Where the server writes its RDB: source.rdb_path, else CONFIG GET dir + dbfilename."""
    if plan.source.rdb_path:
        return plan.source.rdb_path
    r = source_client(plan)
    try:
        d = r.config_get("dir")
        f = r.config_get("dbfilename")
    except Exception as exc:  # noqa: BLE001 - renamed CONFIG and friends
        raise SourceError(f"cannot ask the source where its RDB is (CONFIG GET failed: {exc})",
                          remedy="set source.rdb_path to the RDB's path (CONFIG may be renamed)",
                          step="extract", retryable=False) from exc

    def _s(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    cfg: dict[Any, Any] = {**d, **f}
    dirv = _s(cfg.get("dir") or cfg.get(b"dir"))
    name = _s(cfg.get("dbfilename") or cfg.get(b"dbfilename"))
    return str(Path(dirv) / name)


class RdbStreamCheck:
    """Checks an RDB as its bytes go by: the header once its first bytes are in, SHA-256, and the CRC-64 over all
    but the trailing 8 bytes (the RDB's own checksum), so the last 8 bytes seen are held back from the running CRC.

    Blocks may be any bytes-like object of any length (a replication stream's first piece can be a few bytes);
    nothing but the header's 512 bytes and the 8-byte tail is copied.
    """

    HEAD = 512  # bytes kept for the header and, for a non-RDB, a description of what it is instead

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.header: Any = None
        self.size = 0
        self._sha = hashlib.sha256()
        self._crc = Crc64Jones()
        self._tail = b""
        self._head = b""

    def feed(self, block: bytes | bytearray | memoryview) -> None:
        """Account for the next block.

        Raises:
            ExtractError: the stream does not start with an RDB's header.
        """
        if self.header is None and len(self._head) < self.HEAD:
            self._head += bytes(block[:self.HEAD - len(self._head)])
            if len(self._head) >= self.HEAD or (len(self._head) >= 9 and self._head[:5] in (b"REDIS", b"VALKE")):
                self._read_header()
        self._sha.update(block)
        self.size += len(block)
        if len(block) >= 8:
            self._crc.update(self._tail)  # no longer the last 8 bytes
            self._crc.update(memoryview(block)[:-8])
            self._tail = bytes(block[-8:])
        else:
            data = self._tail + bytes(block)
            self._crc.update(data[:-8])
            self._tail = data[-8:]

    def _read_header(self) -> None:
        try:
            self.header = read_header(self._head)
        except RdbFormatError as exc:
            raise ExtractError(f"{self.origin} is not an RDB file: {exc}",
                               remedy="point source.rdb_path (or the server's dir/dbfilename) at the dump.rdb "
                               "Redis writes", step="extract") from exc

    def result(self, path: str) -> Extracted:
        """What was read, as an Extracted at ``path``.

        Raises:
            ExtractError: nothing was read, not an RDB, or the bytes do not match the RDB's own CRC-64.
        """
        if self.header is None and self._head:
            self._read_header()  # a stream shorter than the header's 512 bytes
        if self.header is None:
            raise ExtractError(f"{self.origin} is empty", remedy="check that BGSAVE wrote the file", step="extract")
        ex = Extracted(path=path, size=self.size, sha256=self._sha.hexdigest(),
                       crc64_stored=int.from_bytes(self._tail, "little") if len(self._tail) == 8 else 0,
                       crc64_computed=self._crc.digest(), rdb_version=self.header.version, magic=self.header.magic,
                       origin=self.origin)
        if ex.checksum_ok is False:
            raise ExtractError(f"{self.origin}: the copy does not match the RDB's own CRC-64 "
                               f"(stored {ex.crc64_stored:#018x}, computed {ex.crc64_computed:#018x})",
                               remedy="the file is corrupt or was being written; re-run to snapshot again",
                               step="extract", retryable=True)
        return ex


def write_checked(chunks: Iterable[bytes], dest: Path, origin: str) -> Extracted:
    """Write ``chunks`` to ``dest`` atomically, checking the RDB header first and hashing as it goes.

    Raises:
        ExtractError: not an RDB (nothing is kept), or the copy does not match its own checksum.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    check = RdbStreamCheck(origin)
    try:
        with open(part, "wb") as out:
            for block in chunks:
                check.feed(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        result = check.result(str(dest))
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return result


@task(name="extract", **IO_RETRIES)
def extract(plan: MigrationPlan) -> Extracted:
    """Copy the source's RDB (from its container or this host) to the migration's workdir.

    Returns:
        The local file, its size, SHA-256, CRC-64 and RDB version.

    Raises:
        ExtractError: container or file missing, not an RDB, not enough disk, checksum mismatch.
    """
    log = run_logger()
    src = rdb_source_for(plan)
    path = rdb_path_on_server(plan)
    origin = src.describe(path)
    expected, chunks = src.open(path)
    workdir = plan.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if expected:
        free = shutil.disk_usage(workdir).free
        if free < expected * 1.05:
            raise ExtractError(f"{workdir} has {free >> 20} MiB free; the RDB is {expected >> 20} MiB",
                               remedy="free disk space or point staging.workdir at a bigger disk", step="extract")
    log.info("extracting %s (%s bytes)", origin, expected if expected is not None else "?")
    result = write_checked(chunks, workdir / "dump.rdb", origin)
    log.info("extracted %s: %s bytes, %s version %s, sha256 %s, CRC-64 %s", origin, result.size, result.magic,
             result.rdb_version, result.sha256[:16],
             {True: "ok", None: "absent (rdbchecksum no)", False: "BAD"}[result.checksum_ok])
    Journal(plan.workdir).update(extracted=result)
    return result
