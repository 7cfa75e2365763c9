"""The Docker seam: one way to build a client for the engine the plan names, and the docker SDK's exceptions
mapped by class to the error tree."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions

from elasticache_migrate.errors import ExtractError, MigrationError, boundary

__all__ = ["docker_client", "docker_errors", "translate_docker", "engine_name"]


def engine_name(docker_host: str | None) -> str:
    """The engine as an operator knows it, for messages."""
    return docker_host or "the default Docker engine"


def docker_client(docker_host: str | None, *, timeout: int = 60) -> docker.DockerClient:
    """A client for ``docker_host`` (``unix:///…``, ``tcp://…``, ``ssh://…``), or the environment's engine.

    Raises:
        docker.errors.DockerException: the engine does not answer (map it with :func:`docker_errors`).
    """
    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=timeout)
    return docker.from_env(timeout=timeout)


def translate_docker(exc: Exception, step: str, error: type[MigrationError], prefix: str) -> MigrationError | None:
    """docker SDK exceptions → the error tree, by class."""
    if isinstance(exc, docker.errors.NotFound):
        return ExtractError(f"{prefix}Docker says not found: {exc}", step=step, retryable=False,
                            remedy="check the container name (docker ps -a) and source.docker_host")
    if isinstance(exc, docker.errors.APIError):
        server_side = exc.is_server_error()
        return error(f"{prefix}the Docker engine refused: {exc}", step=step, retryable=server_side,
                     remedy="check that the Docker engine is running and the worker may use its socket")
    if isinstance(exc, (docker.errors.DockerException, requests.exceptions.ConnectionError,
                        requests.exceptions.Timeout)):
        return error(f"{prefix}cannot reach the Docker engine ({type(exc).__name__}): {exc}", step=step,
                     retryable=True, remedy="start the engine or fix source.docker_host; the worker needs its socket")
    return None


@contextlib.contextmanager
def docker_errors(step: str, error: type[MigrationError], what: str = "") -> Iterator[None]:
    """Map docker SDK exceptions raised inside the block to ``error`` (see :func:`translate_docker`)."""
    with boundary(translate_docker, step, error, what):
        yield
