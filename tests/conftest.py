"""Shared fixtures: real redis-server processes, moto's server, a Prefect test server, a Docker engine.

Nothing here is a mock: every fixture starts the real program on 127.0.0.1. Where a stand-in has gaps
(moto's ElastiCache never reads the RDB and hands out endpoints nobody listens on), the tests that
depend on it say so.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = tempfile.mkdtemp(prefix="prefect-results-")
for _k, _v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_SESSION_TOKEN": "testing"}.items():
    os.environ[_k] = _v  # never real credentials: everything AWS goes to moto on 127.0.0.1

import boto3  # noqa: E402
import pytest  # noqa: E402

from elasticache_migrate.plan import MigrationPlan, validate_plan  # noqa: E402
from elasticache_migrate.testing.binaries import BinaryUnavailable, ServerBinary, find_binary  # noqa: E402
from elasticache_migrate.testing.localredis import LocalRedisServer  # noqa: E402
from elasticache_migrate.testing.ports import free_port  # noqa: E402
from tests.support.docker import docker_engine, redis_image  # noqa: E402,F401
from tests.support.require import missing  # noqa: E402
from tests.support.slack import SlackStandIn  # noqa: E402

REGION = "us-east-1"


def need(name: str) -> ServerBinary:
    """A server binary by name; skipped with the reason when absent, but a failure under CI=true."""
    try:
        return find_binary(name)
    except (BinaryUnavailable, OSError) as exc:
        missing(f"{name} ({exc})")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server (S3, SSM, ElastiCache, …) on 127.0.0.1; the URL goes into plans as aws.endpoint_url."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real Prefect server for the session (the test harness starts it as a subprocess)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh staging bucket that allows ACLs (BucketOwnerPreferred)."""
    name = f"staging-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [
        {"ObjectOwnership": "BucketOwnerPreferred"}]})
    return name


@pytest.fixture
def redis70() -> Any:
    return need("redis-7.0")


@pytest.fixture
def source(tmp_path: Path, redis70: Any) -> Iterator[LocalRedisServer]:
    """A Redis 7.0 source server on this host."""
    srv = LocalRedisServer(redis70, workdir=tmp_path / "source").start()
    yield srv
    srv.stop()


@pytest.fixture
def app_env(tmp_path: Path) -> Path:
    """The app's env file (cutover backend dotenv) pointing at the old Redis."""
    p = tmp_path / "app.env"
    p.write_text("# app settings\nAPP_ENV=production\nREDIS_URL=redis://old-redis:6379/0\nWORKERS=4\n")
    return p


def make_plan(*, tmp_path: Path, moto_endpoint: str, bucket: str, source_port: int, **over: Any) -> MigrationPlan:
    """A rehearsal plan against local servers; ``over`` replaces top-level sections (dicts merged)."""
    mid = over.pop("migration_id", f"m-{uuid.uuid4().hex[:10]}")
    data: dict[str, Any] = {
        "migration_id": mid,
        "aws": {"region": REGION, "endpoint_url": moto_endpoint},
        "source": {"kind": "host", "redis": {"host": "127.0.0.1", "port": source_port}},
        "quiesce": {"drain_timeout_seconds": 5, "max_pause_seconds": 600},
        "staging": {"bucket": bucket, "workdir": str(tmp_path / "work")},
        "target": {"kind": "rehearsal", "replication_group_id": "app-cache", "engine": "redis",
                   "engine_version": "7.0", "wait_delay_seconds": 1, "wait_max_attempts": 60},
        "cutover": {"backend": "none"},
        "approval": {"enabled": False, "timeout_seconds": 120},
    }
    for k, v in over.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return validate_plan(data)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A Slack stand-in on 127.0.0.1 (incoming webhooks and the Web API's chat methods)."""
    standin = SlackStandIn().start()
    yield standin
    standin.stop()
