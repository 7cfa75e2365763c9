"""The private Docker engine the functional tests use: it starts, builds a Redis image with no registry,
and runs Redis in a host-network container whose RDB the docker SDK can stream out."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import redis
from docker.models.containers import Container

from elasticache_migrate.testing.docker_engine import (
    DockerEngine,
    build_redis_image,
    run_redis_container,
    start_engine,
)
from elasticache_migrate.testing.ports import free_port
from tests.support.docker import require_engine

pytestmark = pytest.mark.docker


def bgsave_and_wait(client: redis.Redis, timeout: float = 20) -> None:
    """BGSAVE, then wait until it finished and covered every write made before it."""
    client.bgsave()
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if info["rdb_bgsave_in_progress"] == 0 and info["rdb_changes_since_last_save"] == 0:
            assert info["rdb_last_bgsave_status"] == "ok"
            return
        assert time.monotonic() < deadline, f"BGSAVE did not finish: {info}"
        time.sleep(0.05)


def read_file_from(container: Container, path: str) -> tuple[str, bytes]:
    """The one member of the tar stream ``get_archive(path)`` yields: its name and content."""
    stream, stat = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        [member] = tar.getmembers()
        extracted = tar.extractfile(member)
        assert extracted is not None
        data = extracted.read()
    assert stat["size"] == len(data)
    return member.name, data


@pytest.fixture
def docker_client(docker_engine: DockerEngine) -> Iterator[docker.DockerClient]:
    client = docker_engine.client()
    yield client
    client.close()


@pytest.fixture
def redis_container(
    docker_client: docker.DockerClient,
    redis_image: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., tuple[Container, int]]]:
    """Runs redis containers on free ports (named after the test) and removes them afterwards."""
    started: list[Container] = []

    def run(*, dir: str = "/data", dbfilename: str = "dump.rdb") -> tuple[Container, int]:
        port = free_port()
        name = f"{request.node.name}-{len(started)}".replace("[", "-").replace("]", "")
        container = run_redis_container(
            docker_client, redis_image, name=name, port=port, dir=dir, dbfilename=dbfilename
        )
        started.append(container)
        return container, port

    yield run
    for container in started:
        container.remove(force=True)


def test_engine_answers_on_its_own_socket(docker_engine: DockerEngine) -> None:
    client = docker_engine.client()
    try:
        assert client.ping()
        info = client.info()
    finally:
        client.close()
    assert docker_engine.base_url.startswith("unix://")
    assert Path(docker_engine.base_url.removeprefix("unix://")).is_socket()
    assert info["Driver"] == "vfs"
    assert info["DockerRootDir"] == str(docker_engine.root / "data")


def test_image_holds_server_cli_and_shell(docker_client: docker.DockerClient, redis_image: str) -> None:
    image = docker_client.images.get(redis_image)
    assert redis_image in image.tags
    output = docker_client.containers.run(
        redis_image,
        ["/bin/sh", "-c", "redis-server --version && redis-cli --version"],
        network_mode="host",
        remove=True,
    )
    assert b"Redis server v=" in output
    assert b"redis-cli " in output
    # built again from the same files, the existing image is reused
    assert build_redis_image(docker_client) == redis_image
    assert docker_client.images.get(redis_image).id == image.id


def test_key_written_on_the_host_is_in_the_rdb_streamed_from_the_container(
    redis_container: Callable[..., tuple[Container, int]],
) -> None:
    container, port = redis_container()
    client = redis.Redis(host="127.0.0.1", port=port)
    client.set("greeting", "hello from the host")
    assert client.get("greeting") == b"hello from the host"
    assert client.config_get("dir") == {"dir": "/data"}

    bgsave_and_wait(client)
    name, rdb = read_file_from(container, "/data/dump.rdb")

    assert name == "dump.rdb"
    assert rdb.startswith(b"REDIS")
    assert b"greeting" in rdb and b"hello from the host" in rdb


def test_rdb_lives_where_config_dir_and_dbfilename_say(
    redis_container: Callable[..., tuple[Container, int]],
) -> None:
    container, port = redis_container(dir="/var/lib/cache", dbfilename="snap.rdb")
    client = redis.Redis(host="127.0.0.1", port=port)
    client.set("elsewhere", "1")
    assert client.config_get("dir") == {"dir": "/var/lib/cache"}
    assert client.config_get("dbfilename") == {"dbfilename": "snap.rdb"}

    bgsave_and_wait(client)

    name, rdb = read_file_from(container, "/var/lib/cache/snap.rdb")
    assert name == "snap.rdb"
    assert rdb.startswith(b"REDIS")
    with pytest.raises(docker.errors.NotFound):
        container.get_archive("/data/dump.rdb")


@pytest.mark.slow
def test_restart_keeps_containers_defined(tmp_path: Path) -> None:
    require_engine()
    engine = start_engine(tmp_path)
    client = engine.client()
    try:
        image = build_redis_image(client)
        port = free_port()
        run_redis_container(client, image, name="survivor", port=port)
        redis.Redis(host="127.0.0.1", port=port).set("kept", "yes")
        client.close()

        engine.restart()

        client = engine.client()
        container = client.containers.get("survivor")
        assert container.status == "exited"  # the engine stopped it; SHUTDOWN saved the dataset
        container.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                assert redis.Redis(host="127.0.0.1", port=port).get("kept") == b"yes"
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        client.close()
        engine.stop()
    engine.stop()  # idempotent
    assert not Path(engine.base_url.removeprefix("unix://")).exists()


@pytest.mark.slow
def test_engine_left_over_on_the_socket_is_replaced(tmp_path: Path) -> None:
    require_engine()
    crashed = start_engine(tmp_path)  # stands for an engine a killed test run left behind
    fresh = start_engine(tmp_path)
    try:
        assert fresh.base_url == crashed.base_url
        assert fresh.pid != crashed.pid
        assert crashed._proc is not None and crashed._proc.poll() is not None
        crashed.stop()  # must not touch the engine that replaced it
        client = fresh.client()
        try:
            assert client.ping()
        finally:
            client.close()
    finally:
        fresh.stop()
