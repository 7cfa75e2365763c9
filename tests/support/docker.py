"""pytest fixtures around the private Docker engine of :mod:`elasticache_migrate.testing.docker_engine`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elasticache_migrate.testing.docker_engine import (
    DockerEngine,
    build_redis_image,
    engine_unavailable_reason,
    run_redis_container,
    start_engine,
)
from tests.support.require import missing

__all__ = ["docker_engine", "redis_image", "require_engine", "run_redis_container"]


def require_engine() -> None:
    """Skip the calling test where no engine can run here; under CI=true that is a failure instead."""
    reason = engine_unavailable_reason()
    if reason is not None:
        missing(f"a Docker engine ({reason})")


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A private dockerd for the session; skipped where none can run, but a failure under CI=true."""
    require_engine()
    engine = start_engine(tmp_path_factory.mktemp("docker"))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def redis_image(docker_engine: DockerEngine) -> str:
    """The tag of a Redis image (the host's redis-server) built on the session's engine."""
    client = docker_engine.client()
    try:
        return build_redis_image(client)
    finally:
        client.close()
