"""prefect.yaml's deployments on a real Prefect server, and one migration started and approved in its UI.

A real ``prefect server start`` (its own PREFECT_HOME and SQLite database, the UI served) runs for this module,
apart from the session's test harness. ``prefect deploy`` runs as an operator runs it (README, "Prefect server,
worker, deployments"); everything is read back through the server's API.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis
import yaml
from playwright.sync_api import Error as PlaywrightError
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from elasticache_migrate.plan import validate_plan
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.ports import free_port
from tests.conftest import make_plan
from tests.support.browser import browser_page, chromium_path, evidence_on_failure
from tests.support.outcomes import rehearsal_target
from tests.support.prefect_server import ROOT, ManagedProcess, PrefectServer, start_prefect_server

pytestmark = pytest.mark.slow

POOL = "redis-migrations"
FLOW = "migrate-redis"  # @flow(name=...) in flows/migrate.py


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server with the UI on 127.0.0.1, for this module only; stopped with its children."""
    with start_prefect_server(tmp_path_factory.mktemp("prefect-server"), free_port()) as srv:
        yield srv


def plan_file(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "deployments" / f"{name}.yaml").read_text())["plan"])


def read_deployments(server: PrefectServer) -> dict[str, Any]:
    """Every deployment of the migration flow on the server, by name (each name once, or the test fails)."""
    with SyncPrefectClient(api=server.api_url) as client:
        deps = [d for d in client.read_deployments() if client.read_flow(d.flow_id).name == FLOW]
    by_name = {d.name: d for d in deps}
    assert len(by_name) == len(deps), f"duplicate deployments: {sorted(d.name for d in deps)}"
    return by_name


def test_deploy_all_creates_the_deployments_prefect_yaml_describes(server: PrefectServer) -> None:
    """`prefect deploy --all` from the checkout: three deployments of `migrate-redis` as prefect.yaml says.

    Cannot show: that a worker on another host finds this checkout (the pull step records this path), that the
    schedules fire at the right wall-clock time (they are inactive and the scheduler is not waited for), or
    Prefect Cloud's behaviour.
    """
    server.ensure_work_pool(POOL)
    server.cli("--no-prompt", "deploy", "--all")
    deps = read_deployments(server)
    assert set(deps) == {"maintenance-window", "on-demand", "preflight"}

    window = deps["maintenance-window"]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in window.schedules] == [
        ("0 2 * * SUN", "Europe/Berlin", False)]
    assert window.global_concurrency_limit is None  # one window per source: the flow's lock (a slot would crash
    #                                                     a run paused for approval, see prefect.yaml)
    assert window.parameters["plan"] == plan_file("maintenance-window")

    on_demand = deps["on-demand"]
    assert on_demand.global_concurrency_limit is None
    assert on_demand.schedules == []
    assert on_demand.parameters["plan"] == plan_file("production-example")

    preflight = deps["preflight"]
    assert preflight.parameters["plan_only"] is True
    assert preflight.parameters["plan"] == plan_file("maintenance-window")
    assert [(s.schedule.cron, s.active) for s in preflight.schedules] == [("0 10 * * FRI", False)]

    with SyncPrefectClient(api=server.api_url) as client:
        assert client.read_work_pool(POOL).type == "process"
    for dep in deps.values():
        assert dep.work_pool_name == POOL
        assert dep.entrypoint == "flows/migrate.py:migrate_redis"
        assert dep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]

    # Someone arms the window in the UI; deploying again must disarm it, and duplicate nothing.
    server.api("PATCH", f"/deployments/{window.id}/schedules/{window.schedules[0].id}", json={"active": True})
    server.cli("--no-prompt", "deploy", "--all")
    again = read_deployments(server)
    assert {n: d.id for n, d in again.items()} == {n: d.id for n, d in deps.items()}  # updated, not re-created
    assert [(s.schedule.cron, s.active) for s in again["maintenance-window"].schedules] == [("0 2 * * SUN", False)]
    assert [(s.schedule.cron, s.active) for s in again["preflight"].schedules] == [("0 10 * * FRI", False)]
    assert again["on-demand"].schedules == []


@pytest.fixture
def browser_exe() -> str:
    """Debian's chromium; skipped (a failure under CI=true) before any worker or server of the test starts."""
    return chromium_path()


@pytest.fixture
def worker(server: PrefectServer, tmp_path: Path) -> Iterator[ManagedProcess]:
    """A real process worker on the pool; its flow runs talk to moto with fake credentials only."""
    server.ensure_work_pool(POOL)
    proc = server.start_worker(POOL, tmp_path / "worker.log", env={
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results"),
        "PREFECT_LOGGING_LEVEL": "INFO",
    })
    yield proc
    proc.stop()


def test_operator_runs_on_demand_from_the_ui_and_approves_in_the_resume_form(
        browser_exe: str, source: Any, server: PrefectServer, worker: ManagedProcess, tmp_path: Path,
        moto_endpoint: str, bucket: str, app_env: Path) -> None:
    """Deployments → on-demand → Run → Quick run → the run pauses → Resume → the ApprovalInput form → Completed.

    The on-demand deployment is deployed with a rehearsal plan (`prefect deploy --name on-demand --params`), run
    by a real process worker; the approval is given in headless chromium, in the UI the server serves.
    Cannot show: a real AWS account or ElastiCache (moto's server stands in for S3, the target is a local
    rehearsal Redis 7.0 seeded from the staged object), the production-example plan's own run (its SSM, Docker
    and Slack are not here), other browsers, or the V1 UI (the server's default is the V2 UI, used here).
    """
    r = source.client()
    for i in range(50):
        r.set(f"session:{i}", f"user-{i}")
    r.hset("config:flags", mapping={"checkout": "on", "search": "off"})
    r.rpush("queue:mail", *[f"job-{i}" for i in range(5)])
    expected = contents(r)
    r.close()  # the app disconnects: quiesce waits for application clients to leave
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 300, "approvers": ["ui-tester"]})
    params = {"plan": plan.model_dump(mode="json", exclude_unset=True)}
    server.cli("--no-prompt", "deploy", "--name", "on-demand", "--params", json.dumps(params))
    evidence = tmp_path / "ui"
    run_id = ""

    def context() -> str:
        state = server.api("GET", f"/flow_runs/{run_id}")["state"] if run_id else None
        return f"flow run {run_id or '(not created)'}: {state}\nworker log:\n{worker.tail()}"

    try:
        with browser_page(browser_exe) as page:
            with evidence_on_failure(page, evidence, "open deployment", context):
                page.goto(f"{server.url}/")
                page.get_by_role("link", name="Deployments", exact=True).first.click()
                page.get_by_role("link", name="on-demand", exact=True).click()
            with evidence_on_failure(page, evidence, "quick run", context):
                page.get_by_role("button", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Quick run").click()
                # The V2 UI asks for the required `plan` in a dialog, prefilled with the deployment's parameters.
                before = _runs_of(server, "on-demand")
                # The "Flow run created" toast links to the run, but it can come and go before it is looked for, and
                # on a loaded machine a click on Run can stay without effect (the dialog stays open, no request):
                # both seen. As an operator would, Run is clicked again while the dialog stays open; the run is
                # read from the API.
                run_id = _click_run_until_created(page, server, "on-demand", before, timeout=180)
                page.goto(f"{server.url}/v2/runs/flow-run/{run_id}")
            with evidence_on_failure(page, evidence, "wait for paused", context):
                assert shown_state(page, "Paused", timeout_ms=90_000) == "Paused"
            with evidence_on_failure(page, evidence, "resume form", context):
                page.locator("main").get_by_role("button", name="Open menu").click()
                page.get_by_role("menuitem", name="Resume").click()
                form = page.get_by_role("dialog", name="Resume Flow Run")
                form.get_by_text(f"Approve cutover of {plan.migration_id}").wait_for()  # the summary is shown
                form.get_by_role("button", name="Select Decision").click()
                page.get_by_role("option", name="approve", exact=True).click()
                form.get_by_label("Approver").fill("ui-tester")
                form.get_by_label("Note (Optional)").fill("checked the verify result in the UI")
                # On a loaded machine a click can stay without effect (seen with Run above, and here on the fresh
                # machine): while the run is still paused and the form still open, Resume is clicked again.
                _click_until_not_paused(form, form.get_by_role("button", name="Resume", exact=True), server, run_id,
                                        timeout=120)
            with evidence_on_failure(page, evidence, "wait for completed", context):
                assert shown_state(page, "Completed", timeout_ms=60_000) == "Completed"

        with SyncPrefectClient(api=server.api_url) as client:
            run = client.read_flow_run(UUID(run_id))
            assert run.state is not None and run.state.is_completed(), context()
            # the dialog sent the deployment's plan (the form may spell out defaults: compare what they mean)
            assert validate_plan(run.parameters["plan"]) == plan, run.parameters
            assert run.parameters.get("plan_only", False) is False, run.parameters
        assert wait_for_log(server, run_id, "cutover APPROVED by ui-tester: checked the verify result in the UI"), \
            context()
        target = rehearsal_target(plan)
        assert target and target.port != source.port
        text = app_env.read_text()
        assert f"REDIS_URL=redis://127.0.0.1:{target.port}/0" in text, text
        assert f":{source.port}/" not in text and "APP_ENV=production" in text, text
        t = redis.Redis(host="127.0.0.1", port=int(target.port))
        try:
            assert contents(t) == expected
        finally:
            t.close()
    finally:
        _cancel_if_running(server, run_id)
        stop_rehearsal_target(plan.workdir)


def shown_state(page: Any, awaited: str, timeout_ms: float) -> str:
    """The run's state badge once it shows ``awaited`` or a final state (a failed run fails at once)."""
    badge = page.locator("main").get_by_text(re.compile(rf"^({awaited}|Failed|Crashed|Cancelled)$")).first
    badge.wait_for(timeout=timeout_ms)
    return str(badge.inner_text()).strip()


def contents(r: redis.Redis) -> dict[bytes, Any]:
    """Every key of db0 with its type and value (what the app would read)."""
    read: dict[Any, Any] = {b"string": r.get, b"hash": r.hgetall, b"list": lambda k: r.lrange(k, 0, -1)}
    return {k: (t, read[t](k)) for k in r.scan_iter() for t in [r.type(k)]}


def wait_for_log(server: PrefectServer, run_id: str, text: str, timeout: float = 20) -> bool:
    """Whether the run's logs on the server contain ``text`` (the run ships its logs in batches)."""
    deadline = time.monotonic() + timeout
    with SyncPrefectClient(api=server.api_url) as client:
        while True:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])))
            if any(text in entry.message for entry in logs):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


def _cancel_if_running(server: PrefectServer, run_id: str) -> None:
    """After a failure: a paused or running run is cancelled, so its process lets go of the source."""
    if not run_id:
        return
    try:
        state = server.api("GET", f"/flow_runs/{run_id}")["state"]
        if state and state["type"] in {"PAUSED", "RUNNING", "PENDING", "SCHEDULED"}:
            server.api("POST", f"/flow_runs/{run_id}/set_state",
                       json={"state": {"type": "CANCELLING"}, "force": True})
            time.sleep(2)  # the worker passes the cancellation on; whatever is left is killed with the worker
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
        pass



def _runs_of(server: PrefectServer, deployment: str) -> set[str]:
    """The ids of every flow run of the deployment named ``deployment``."""
    deps = {d["id"] for d in server.api("POST", "/deployments/filter", json={}) if d["name"] == deployment}
    return {str(r["id"]) for r in server.api("POST", "/flow_runs/filter", json={}) if r.get("deployment_id") in deps}



def _click_run_until_created(page: Any, server: PrefectServer, deployment: str, before: set[str],
                             timeout: float) -> str:
    """Click the Run Deployment dialog's Run (again every 20 s while it stays open) until a new run exists."""
    dialog = page.get_by_role("dialog", name="Run Deployment")
    deadline = time.monotonic() + timeout
    clicked_at = -1e9
    while time.monotonic() < deadline:
        new = _runs_of(server, deployment) - before
        if new:
            assert len(new) == 1, f"the clicks created {len(new)} runs of {deployment}"
            return new.pop()
        if time.monotonic() - clicked_at >= 20 and dialog.is_visible():
            with contextlib.suppress(PlaywrightError):
                dialog.get_by_role("button", name="Run", exact=True).click(timeout=5_000)
            clicked_at = time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"no flow run of {deployment} was created within {timeout:.0f}s of clicking Run")



def _click_until_not_paused(dialog: Any, button: Any, server: PrefectServer, run_id: str, timeout: float) -> None:
    """Click ``button`` (again every 20 s while ``dialog`` stays open) until the run is no longer Paused."""
    deadline = time.monotonic() + timeout
    clicked_at = -1e9
    while time.monotonic() < deadline:
        if server.api("GET", f"/flow_runs/{run_id}")["state"]["type"] != "PAUSED":
            return
        if time.monotonic() - clicked_at >= 20 and dialog.is_visible():
            with contextlib.suppress(PlaywrightError):
                button.click(timeout=5_000)
            clicked_at = time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"flow run {run_id} still paused {timeout:.0f}s after clicking Resume")


def _run_created_for(server: PrefectServer, deployment: str, before: set[str], timeout: float,
                     raise_on_timeout: bool = True) -> str:
    """The id of the flow run the UI just created for ``deployment`` (not in ``before``); "" when none came within
    ``timeout`` and not ``raise_on_timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        new = _runs_of(server, deployment) - before
        if new:
            assert len(new) == 1, f"one click created {len(new)} runs of {deployment}"
            return new.pop()
        if time.monotonic() > deadline:
            if not raise_on_timeout:
                return ""
            raise AssertionError(f"no flow run of {deployment} was created within {timeout:.0f}s of the click")
        time.sleep(0.5)
