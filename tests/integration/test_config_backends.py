"""switch-config against each backend's real stand-in, driven through Prefect like the flow drives it.

For every backend: the switch writes the new value and the app's own way of reading shows it; a failure
after the switch makes the flow's rollback path (the restore-config task) restore the previous value exactly
(and "absent" stays absent); a re-run that finds the value already switched writes nothing. The stand-ins: moto's server
(SSM, Secrets Manager, Route 53), real files, a real HTTP server on 127.0.0.1 for the webhook, and the
private Docker engine for the app-container restarts.

What moto cannot show, for Route 53: it answers every change and every GetChange with INSYNC at once and
one fixed change id, so the ``resource_record_sets_changed`` waiter returns on its first poll here; the
PENDING → INSYNC wait and its time limit are exercised against botocore's Stubber in
``tests/unit/test_config_backends_pure.py``. moto also accepts a CNAME beside other records of the same
name, which Route 53 refuses (InvalidChangeBatch, mapped to a CutoverError with AWS's message).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from prefect import flow

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.switch import Switched
from elasticache_migrate.errors import CutoverError, VerificationError
from elasticache_migrate.journal import Journal
from elasticache_migrate.source.connection import Endpoint
from tasks.switch_config import restore_config, switch_config
from tests.conftest import REGION, make_plan

pytestmark = pytest.mark.usefixtures("prefect_server")

NEW = Endpoint("master.app-cache.abc123.use1.cache.amazonaws.com", 6379)
NEW_URL = f"redis://{NEW.host}:6379/0"
OLD_URL = "redis://:s3cret-pw@old-redis.internal:6379/0"


@flow(name="test-switch")
def switch_flow(plan: Any, endpoint: Endpoint) -> Switched:
    return switch_config(plan, endpoint)


@flow(name="test-restore")
def restore_flow(plan: Any) -> bool:
    """migrate-redis's rollback path on its own: the restore-config task inside a flow run."""
    return restore_config(plan)


@flow(name="test-switch-then-verify-fails")
def switch_then_fail_flow(plan: Any, endpoint: Endpoint) -> None:
    """What migrate-redis does when verify-cutover fails: its rollback path runs the restore-config task."""
    try:
        switch_config(plan, endpoint)
        raise VerificationError("verify-cutover failed (test)", step="verify-cutover")
    except BaseException:
        restore_config(plan)
        raise


@flow(name="test-switch-or-restore")
def switch_or_restore_flow(plan: Any, endpoint: Endpoint) -> None:
    """migrate-redis's shape when switch-config itself fails: its rollback path runs the restore-config task."""
    try:
        switch_config(plan, endpoint)
    except BaseException:
        restore_config(plan)
        raise


# ---- one stand-in per backend -----------------------------------------------------------------------------------


@dataclass
class Stand:
    """A backend's real stand-in: how the plan names it, how the app reads it, and its exact raw state."""

    cutover: dict[str, Any]
    app_value: Callable[[], str | None]          # what the app would read
    raw: Callable[[], Any]                       # everything a restore must give back exactly
    writes: Callable[[], Any] = lambda: None     # evidence of a write the stand-in itself keeps
    new: str = NEW_URL
    extra: dict[str, Any] = field(default_factory=dict)


def ssm_stand(moto: str, old: str | None) -> Stand:
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto)
    name = f"/app/{uuid.uuid4().hex[:8]}/redis_url"
    if old is not None:
        ssm.put_parameter(Name=name, Value=old, Type="SecureString")

    def param() -> dict[str, Any] | None:
        try:
            return dict(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"])
        except ssm.exceptions.ParameterNotFound:
            return None

    return Stand({"backend": "ssm", "ssm_parameter": name},
                 app_value=lambda: (param() or {}).get("Value"),
                 raw=lambda: param() and (param()["Value"], param()["Type"]),  # type: ignore[index]
                 writes=lambda: (param() or {}).get("Version"))


SECRET_OTHER = '{\n  "DB_URL": "postgres://app:hunter2@db:5432/app",\n  "RATE": 1.50,\n  "BIG": 1e400'


def secretsmanager_stand(moto: str, old: str | None) -> Stand:
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto)
    name = f"app/{uuid.uuid4().hex[:8]}"
    body = SECRET_OTHER + (f',\n  "REDIS_URL": {json.dumps(old)}' if old is not None else "") + "\n}"
    sm.create_secret(Name=name, SecretString=body)

    def secret() -> dict[str, Any]:
        return dict(sm.get_secret_value(SecretId=name))

    return Stand({"backend": "secretsmanager", "secret_id": name, "secret_field": "REDIS_URL"},
                 app_value=lambda: json.loads(secret()["SecretString"]).get("REDIS_URL"),
                 raw=lambda: secret()["SecretString"], writes=lambda: secret()["VersionId"])


def route53_stand(moto: str, old: str | None) -> Stand:
    r53 = boto3.client("route53", region_name=REGION, endpoint_url=moto)
    zone_name = f"z{uuid.uuid4().hex[:8]}.internal.example.com"
    zone = r53.create_hosted_zone(Name=zone_name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    record = f"redis.{zone_name}"
    if old is not None:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE",
            "ResourceRecordSet": {"Name": record, "Type": "CNAME", "TTL": 300,
                                  "ResourceRecords": [{"Value": old}]}}]})  # fmt: skip

    def cname() -> dict[str, Any] | None:
        sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        found = [r for r in sets if r["Type"] == "CNAME" and r["Name"].rstrip(".") == record]
        return found[0] if found else None

    return Stand({"backend": "route53", "route53_zone_id": zone, "route53_record": record, "route53_ttl": 30},
                 app_value=lambda: str(c["ResourceRecords"][0]["Value"]).rstrip(".") if (c := cname()) else None,
                 raw=lambda: (c := cname()) and (c["TTL"], [v["Value"] for v in c["ResourceRecords"]]),
                 new=NEW.host, extra={"cname": cname})


def dotenv_stand(tmp: Path, old: str | None) -> Stand:
    path = tmp / "app.env"
    path.write_text("# app settings\nAPP_ENV=production\n" + (f"REDIS_URL={old}\n" if old else "") + "WORKERS=4\n")
    path.chmod(0o640)

    def app_value() -> str | None:  # how the app reads it: the last REDIS_URL= line
        lines = [ln.split("=", 1)[1] for ln in path.read_text().splitlines() if ln.startswith("REDIS_URL=")]
        return lines[-1] if lines else None

    return Stand({"backend": "dotenv", "dotenv_path": str(path)}, app_value=app_value,
                 raw=lambda: (path.read_bytes(), path.stat().st_mode), writes=lambda: path.stat().st_ino)


YAML_DOC = """\
# shop config (comments must survive)
app:
  name: shop    # shown in logs
redis:
  # the cache
{url}  pool_size: 10
log:
  level: info
"""


def yaml_stand(tmp: Path, old: str | None) -> Stand:
    path = tmp / "config.yaml"
    path.write_text(YAML_DOC.format(url=f'  url: "{old}"  # switched by the migration\n' if old else ""))
    path.chmod(0o600)

    def app_value() -> str | None:
        return (yaml.safe_load(path.read_text()).get("redis") or {}).get("url")

    return Stand({"backend": "yaml", "yaml_path": str(path), "yaml_key": "redis.url"}, app_value=app_value,
                 raw=lambda: (path.read_bytes(), path.stat().st_mode), writes=lambda: path.stat().st_ino)


class AppConfigServer:
    """The app's config endpoint on 127.0.0.1: GET/PUT/DELETE one value, bearer token required."""

    def __init__(self, token: str, value: str | None) -> None:
        self.token, self.value, self.changes, self.delay = token, value, 0, 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                time.sleep(outer.delay)
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    self._answer(401, {"error": "bad token"})
                    return False
                return True

            def do_GET(self) -> None:
                if self._authorized():
                    self._answer(404, {"error": "unset"}) if outer.value is None else self._answer(
                        200, {"value": outer.value})

            def do_PUT(self) -> None:
                if self._authorized():
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    outer.value, outer.changes = body["value"], outer.changes + 1
                    self._answer(204)

            def do_DELETE(self) -> None:
                if self._authorized():
                    outer.value, outer.changes = None, outer.changes + 1
                    self._answer(204)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/internal/config/redis_url"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[AppConfigServer]]:
    started: list[AppConfigServer] = []
    yield started
    for s in started:
        s.close()


def webhook_stand(old: str | None, servers: list[AppConfigServer], monkeypatch: pytest.MonkeyPatch) -> Stand:
    server = AppConfigServer("t0ken-" + uuid.uuid4().hex[:6], old)
    servers.append(server)
    monkeypatch.setenv("APP_CONFIG_TOKEN", server.token)
    return Stand({"backend": "webhook", "webhook_url": server.url, "webhook_token_secret": "env:APP_CONFIG_TOKEN"},
                 app_value=lambda: server.value, raw=lambda: server.value, writes=lambda: server.changes,
                 extra={"server": server})


BACKENDS = ["ssm", "secretsmanager", "route53", "dotenv", "yaml", "webhook"]


@pytest.fixture
def stand(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str, servers: list[AppConfigServer],
          monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str | None], Stand]:
    def make(kind: str, old: str | None) -> Stand:
        if kind == "ssm":
            return ssm_stand(moto_endpoint, old)
        if kind == "secretsmanager":
            return secretsmanager_stand(moto_endpoint, old)
        if kind == "route53":
            return route53_stand(moto_endpoint, None if old is None else "old-redis.internal.example.com")
        if kind == "dotenv":
            return dotenv_stand(tmp_path, old)
        if kind == "yaml":
            return yaml_stand(tmp_path, old)
        return webhook_stand(old, servers, monkeypatch)

    return make


def plan_for(tmp_path: Path, moto_endpoint: str, cutover: dict[str, Any]) -> Any:
    return make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket="unused-bucket", source_port=6379,
                     cutover=cutover)


@pytest.fixture
def backend_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every backend write() call in this process (the flow runs its tasks in this process)."""
    calls: list[str] = []
    for kind in BACKENDS:
        backend = config_backend(make_plan(tmp_path=Path("/tmp"), moto_endpoint="http://127.0.0.1:1",
                                           bucket="unused-bucket", source_port=6379, cutover=_dummy_cutover(kind)))
        assert backend is not None
        cls = type(backend)
        original = cls.write

        def counted(self: Any, value: str | None, _orig: Any = original, _kind: str = kind) -> None:
            calls.append(_kind)
            _orig(self, value)

        monkeypatch.setattr(cls, "write", counted)
    return calls


def _dummy_cutover(kind: str) -> dict[str, Any]:
    return {"ssm": {"ssm_parameter": "/x"}, "secretsmanager": {"secret_id": "x"},
            "route53": {"route53_zone_id": "Z1", "route53_record": "r.example.com"},
            "dotenv": {"dotenv_path": "/x"}, "yaml": {"yaml_path": "/x"},
            "webhook": {"webhook_url": "http://127.0.0.1:1/x"}}[kind] | {"backend": kind}


# ---- the three behaviours, for every backend ------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_switch_writes_once_and_a_rerun_does_not_write_again(kind: str, stand: Any, tmp_path: Path,
                                                             moto_endpoint: str, backend_writes: list[str]) -> None:
    s = stand(kind, OLD_URL)
    plan = plan_for(tmp_path, moto_endpoint, s.cutover)

    first = switch_flow(plan, NEW)
    assert first.changed and s.app_value() == s.new            # the app now reads the new endpoint
    assert first.new == s.new
    assert backend_writes == [kind]
    evidence = s.writes()

    again = switch_flow(plan, NEW)                               # a re-run of the step (same migration id)
    assert not again.changed and s.app_value() == s.new
    assert again.previous == first.previous                       # the journal still knows the old value
    assert backend_writes == [kind]                              # no second write …
    assert s.writes() == evidence                                # … and the stand-in saw none

    assert restore_flow(plan) and s.app_value() != s.new        # and the journal can still restore it


@pytest.mark.parametrize("old", [OLD_URL, None], ids=["previous-value", "previously-absent"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_failure_after_switch_restores_exactly(kind: str, old: str | None, stand: Any, tmp_path: Path,
                                               moto_endpoint: str, backend_writes: list[str]) -> None:
    s = stand(kind, old)
    before_raw, before_value = s.raw(), s.app_value()
    plan = plan_for(tmp_path, moto_endpoint, s.cutover)

    state = switch_then_fail_flow(plan, NEW, return_state=True)

    assert state.is_failed() and "verify-cutover failed" in (state.message or "")
    assert backend_writes == [kind, kind]                        # the switch, then one restore: nothing else wrote
    assert s.raw() == before_raw                                 # exactly what was there (or nothing)
    assert s.app_value() == before_value
    assert (before_value is None) == (old is None)
    assert Journal(plan.workdir).read().cutover is None          # nothing left to restore


# ---- backend-specific outcomes ------------------------------------------------------------------------------


def test_route53_switch_sets_plan_ttl_and_restore_brings_back_old_ttl(stand: Any, tmp_path: Path,
                                                                      moto_endpoint: str) -> None:
    s = stand("route53", "x")
    assert s.raw() == (300, ["old-redis.internal.example.com"])
    plan = plan_for(tmp_path, moto_endpoint, s.cutover)
    switch_flow(plan, NEW)
    assert s.raw() == (30, [NEW.host])                           # the bare host, the plan's short TTL
    restore_flow(plan)
    assert s.raw() == (300, ["old-redis.internal.example.com"])


def test_secretsmanager_keeps_other_fields_to_the_byte(stand: Any, tmp_path: Path, moto_endpoint: str) -> None:
    s = stand("secretsmanager", OLD_URL)
    before = s.raw()
    plan = plan_for(tmp_path, moto_endpoint, s.cutover)
    switch_flow(plan, NEW)
    after = s.raw()
    assert after == before.replace(json.dumps(OLD_URL), json.dumps(NEW_URL))  # 1.50 and 1e400 as they were


def test_secretsmanager_refuses_a_secret_that_is_not_json_without_quoting_it(tmp_path: Path,
                                                                           moto_endpoint: str) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"app/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="redis://:hunter2@old:6379/0")
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "secretsmanager", "secret_id": name})
    backend = config_backend(plan)
    assert backend is not None
    with pytest.raises(CutoverError, match="not a JSON object|Expecting value") as err:
        backend.read()
    assert "hunter2" not in str(err.value) and err.value.__cause__ is None
    state = switch_flow(plan, NEW, return_state=True)
    assert state.is_failed() and "hunter2" not in (state.message or "")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "redis://:hunter2@old:6379/0"


def test_secretsmanager_missing_secret_is_a_clear_error(tmp_path: Path, moto_endpoint: str) -> None:
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "secretsmanager", "secret_id": "app/does-not-exist"})
    with pytest.raises(CutoverError, match="secret app/does-not-exist does not exist"):
        config_backend(plan).read()  # type: ignore[union-attr]


def test_yaml_switch_changes_one_line_only(stand: Any, tmp_path: Path, moto_endpoint: str) -> None:
    s = stand("yaml", OLD_URL)
    path = Path(s.cutover["yaml_path"])
    before = path.read_text()
    switch_flow(plan_for(tmp_path, moto_endpoint, s.cutover), NEW)
    assert path.read_text() == before.replace(f'"{OLD_URL}"', f'"{NEW_URL}"')  # quotes and comment kept
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_webhook_wrong_token_and_timeout_are_clear_errors(stand: Any, tmp_path: Path, moto_endpoint: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    import elasticache_migrate.cutover.webhook as webhook

    s = stand("webhook", OLD_URL)
    plan = plan_for(tmp_path, moto_endpoint, s.cutover)
    monkeypatch.setenv("APP_CONFIG_TOKEN", "wrong")
    with pytest.raises(CutoverError, match="refused the request \\(HTTP 401\\)") as err:
        config_backend(plan).read()  # type: ignore[union-attr]
    assert "wrong" not in str(err.value)
    monkeypatch.setenv("APP_CONFIG_TOKEN", s.extra["server"].token)
    s.extra["server"].delay = 1.0
    monkeypatch.setattr(webhook, "TIMEOUT", httpx.Timeout(0.3))
    with pytest.raises(CutoverError, match="timed out"):
        config_backend(plan).write(NEW_URL)  # type: ignore[union-attr]
    s.extra["server"].delay = 0
    monkeypatch.setattr(webhook, "TIMEOUT", httpx.Timeout(5.0))
    s.extra["server"].httpd.shutdown()
    s.extra["server"].httpd.server_close()
    with pytest.raises(CutoverError, match="ConnectError"):
        config_backend(plan).read()  # type: ignore[union-attr]
    assert s.app_value() == OLD_URL


# ---- app containers restarted through the Docker engine (the first field report's setup) ----------------------

APP_SCRIPT = ('trap "exit 0" TERM; echo "started"; cat /config/app.env; sleep 1; : > /run/ready; '
              'sleep 100000 & wait')
# Healthy once started, unless the config points at a host the "app" cannot use.
APP_HEALTH = 'case "$(cat /config/app.env)" in *unreachable*) exit 1;; *) [ -f /run/ready ];; esac'


@pytest.fixture(scope="module")
def app_image(docker_engine: Any) -> str:
    """An "app" image: sh, cat and sleep from this host (no registry), packaged like the Redis image."""
    from elasticache_migrate.testing.docker_engine import build_redis_image

    client = docker_engine.client()
    try:
        return build_redis_image(client, tag="local/config-app:1",
                                 extra_binaries=[Path("/usr/bin/cat"), Path("/usr/bin/sleep")])
    finally:
        client.close()


@pytest.fixture
def app_container(docker_engine: Any, app_image: str, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """An app container reading the bind-mounted config directory at start, with a healthcheck."""
    cfg = tmp_path / "appcfg"
    cfg.mkdir()
    env = cfg / "app.env"
    env.write_text(f"# app\nAPP_ENV=production\nREDIS_URL={OLD_URL}\n")
    client = docker_engine.client()
    container = client.containers.run(
        app_image, ["sh", "-c", APP_SCRIPT], name=f"shop-app-{uuid.uuid4().hex[:6]}", detach=True,
        network_mode="host", volumes={str(cfg): {"bind": "/config", "mode": "ro"}}, tmpfs={"/run": ""},
        healthcheck={"test": ["CMD-SHELL", APP_HEALTH], "interval": 200_000_000, "timeout": 2_000_000_000,
                     "start_period": 3_000_000_000, "retries": 2})  # failures count 3 s after each start
    _wait_healthy(container)
    try:
        yield container, env
    finally:
        container.remove(force=True)
        client.close()


def _wait_healthy(container: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if (container.attrs["State"].get("Health") or {}).get("Status") == "healthy":
            return
        assert time.monotonic() < deadline, f"app container not healthy: {container.attrs['State']}"
        time.sleep(0.1)


def _state(container: Any) -> tuple[str, str, str | None]:
    container.reload()
    st = container.attrs["State"]
    return st["StartedAt"], st["Status"], (st.get("Health") or {}).get("Status")


def _url_in_last_start(container: Any) -> str:
    """The REDIS_URL the app printed when it last started (its logs hold every start)."""
    last = container.logs().decode().rsplit("started\n", 1)[1]
    return [ln.split("=", 1)[1] for ln in last.splitlines() if ln.startswith("REDIS_URL=")][-1]


@pytest.mark.docker
def test_app_container_restarted_after_switch_and_after_rollback(app_container: tuple[Any, Path], tmp_path: Path,
                                                                  moto_endpoint: str, docker_engine: Any) -> None:
    container, env = app_container
    before = env.read_bytes()
    started0, _, _ = _state(container)
    assert _url_in_last_start(container) == OLD_URL
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "dotenv", "dotenv_path": str(env),
                                               "restart_containers": [container.name],
                                               "docker_host": docker_engine.base_url})

    switch_flow(plan, NEW)
    started1, status, health = _state(container)
    assert started1 != started0 and (status, health) == ("running", "healthy")  # restarted, waited for healthy
    assert _url_in_last_start(container) == NEW_URL                              # and it read the new value

    again = switch_flow(plan, NEW)                          # a re-run: nothing written, nobody restarted
    assert not again.changed and _state(container)[0] == started1

    journal = Journal(plan.workdir)                         # as if the first run had died before the restart:
    recorded = journal.read().cutover
    assert recorded is not None
    journal.update(cutover=dataclasses.replace(recorded, restarted=False))
    inode = env.stat().st_ino
    assert not switch_flow(plan, NEW).changed               # the re-run restarts the app, writes nothing
    started1b = _state(container)[0]
    assert started1b != started1 and env.stat().st_ino == inode and _url_in_last_start(container) == NEW_URL

    restore_flow(plan)                                      # the rollback path: old value, restarted again
    started2, status, health = _state(container)
    assert started2 != started1b and (status, health) == ("running", "healthy")
    assert _url_in_last_start(container) == OLD_URL and env.read_bytes() == before


@pytest.mark.docker
def test_rollback_after_failed_verify_restarts_the_app_onto_the_old_value(app_container: tuple[Any, Path],
                                                                          tmp_path: Path, moto_endpoint: str,
                                                                          docker_engine: Any) -> None:
    container, env = app_container
    before = env.read_bytes()
    started0, _, _ = _state(container)
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "dotenv", "dotenv_path": str(env),
                                               "restart_containers": [container.name],
                                               "docker_host": docker_engine.base_url})
    state = switch_then_fail_flow(plan, NEW, return_state=True)
    assert state.is_failed()
    started, status, health = _state(container)
    assert env.read_bytes() == before
    assert started != started0 and (status, health) == ("running", "healthy")
    logs = container.logs().decode()
    assert logs.count("started\n") == 3                     # first start, after the switch, after the rollback
    assert f"REDIS_URL={NEW_URL}" in logs and _url_in_last_start(container) == OLD_URL


@pytest.mark.docker
def test_unhealthy_app_after_switch_fails_and_the_restore_brings_it_back(app_container: tuple[Any, Path],
                                                                         tmp_path: Path, moto_endpoint: str,
                                                                         docker_engine: Any) -> None:
    container, env = app_container
    before = env.read_bytes()
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "dotenv", "dotenv_path": str(env),
                                               "restart_containers": [container.name],
                                               "docker_host": docker_engine.base_url})
    state = switch_or_restore_flow(plan, Endpoint("unreachable.example", 6379), return_state=True)
    assert state.is_failed()
    assert f"app container {container.name}: its healthcheck reports unhealthy" in (state.message or "")
    assert env.read_bytes() == before                        # restored, and the app is healthy on it again
    assert _state(container)[1:] == ("running", "healthy") and _url_in_last_start(container) == OLD_URL


@pytest.mark.docker
def test_missing_container_fails_before_the_config_changes(app_container: tuple[Any, Path], tmp_path: Path,
                                                           moto_endpoint: str, docker_engine: Any) -> None:
    container, env = app_container
    before = env.read_bytes()
    plan = plan_for(tmp_path, moto_endpoint, {"backend": "dotenv", "dotenv_path": str(env),
                                               "restart_containers": [container.name, "shop-worker-gone"],
                                               "docker_host": docker_engine.base_url})
    started0 = _state(container)[0]
    state = switch_flow(plan, NEW, return_state=True)
    assert state.is_failed() and "app container 'shop-worker-gone' does not exist" in (state.message or "")
    assert env.read_bytes() == before and _state(container)[0] == started0  # nothing changed, nobody restarted
