"""The app containers restarted after a switch or restore: when a restarted container counts as ready, and
which Docker engine runs them."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.cutover.restart import docker_host, readiness
from tests.unit.cutover.plans import plan


@pytest.mark.parametrize(("state", "verdict"), [
    ({"Status": "running", "StartedAt": "t0"}, "wait"),                                   # not restarted yet
    ({"Status": "running", "StartedAt": "t1"}, "ready"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "starting"}}, "wait"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "healthy"}}, "ready"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "unhealthy"}}, "its healthcheck reports unhealthy"),
    ({"Status": "exited", "StartedAt": "t1", "ExitCode": 3}, "it exited with code 3 after the restart"),
    ({"Status": "restarting", "StartedAt": "t1"}, "wait"),
])
def test_container_readiness(state: dict[str, Any], verdict: str) -> None:
    assert readiness(state, "t0") == verdict


def test_docker_host_prefers_the_cutover_engine() -> None:
    p = plan(backend="none")
    assert docker_host(p) is None
    p.source.docker_host = "unix:///src.sock"
    assert docker_host(p) == "unix:///src.sock"
    p.cutover.docker_host = "unix:///app.sock"
    assert docker_host(p) == "unix:///app.sock"
