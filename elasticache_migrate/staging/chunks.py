"""Chunk sources: where the RDB's bytes come from, each as an iterator of chunks for the one sink.

- a container, read through the Docker API's archive stream (``get_archive``: works on stopped containers and
  volumes), through the Docker seam :mod:`elasticache_migrate.containers`;
- a file on this host (the source's own dump, or the migration's checked local copy);
- the master's replication stream (:class:`elasticache_migrate.source.replication.ReplicationStream`, iterated
  as it is).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from elasticache_migrate.containers import docker_client, docker_errors, engine_name
from elasticache_migrate.errors import ExtractError, SourceError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.config import config_get
from elasticache_migrate.source.connection import redis_errors, source_client

__all__ = ["CHUNK", "RdbSource", "IterStream", "DockerRdbSource", "HostRdbSource", "rdb_source_for",
           "rdb_path_on_server", "file_chunks"]

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
        super().__init__()
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
        with docker_errors("extract", ExtractError, f"Docker engine {engine_name(docker_host)}"):
            self.client = docker_client(docker_host)
            self.container: Any = self.client.containers.get(container)

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
            yield from _blocks(f)


class HostRdbSource:
    """The RDB as a file on this host."""

    def describe(self, path: str) -> str:
        return f"host:{path}"

    def open(self, path: str) -> tuple[int | None, Iterator[bytes]]:
        try:
            f = open(path, "rb")  # closed by the generator
        except FileNotFoundError as exc:
            raise ExtractError(f"RDB file {path} does not exist on this host",
                               remedy="set source.rdb_path, or check the server's `dir`/`dbfilename`",
                               step="extract") from exc
        return os.fstat(f.fileno()).st_size, _closing_blocks(f)


def _blocks(f: IO[bytes], size: int = CHUNK) -> Iterator[bytes]:
    while block := f.read(size):
        yield block


def _closing_blocks(f: IO[bytes]) -> Iterator[bytes]:
    with f:
        yield from _blocks(f)


def file_chunks(path: Path | str) -> Iterator[bytes]:
    """The bytes of a local file, in chunks (opened at the first chunk, closed after the last)."""
    with open(path, "rb") as f:
        yield from _blocks(f)


def rdb_source_for(plan: MigrationPlan) -> RdbSource:
    """The RdbSource the plan names."""
    if plan.source.kind == "docker":
        assert plan.source.container
        return DockerRdbSource(plan.source.container, plan.source.docker_host)
    return HostRdbSource()


def rdb_path_on_server(plan: MigrationPlan) -> str:
    """Where the server writes its RDB: source.rdb_path, else CONFIG GET dir + dbfilename.

    Raises:
        SourceError: CONFIG GET refused (renamed, disabled, not granted) and no source.rdb_path.
    """
    if plan.source.rdb_path:
        return plan.source.rdb_path
    with redis_errors("extract", SourceError, "source"):
        r = source_client(plan)
        where, name = config_get(r, "dir"), config_get(r, "dbfilename")
    if where is None or name is None:
        raise SourceError("cannot ask the source where its RDB is (CONFIG GET dir/dbfilename refused: renamed, "
                          "disabled or not granted)",
                          remedy="set source.rdb_path to the RDB's path (CONFIG may be renamed)", step="extract",
                          retryable=False)
    return str(Path(where) / name)
