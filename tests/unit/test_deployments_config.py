"""prefect.yaml against the plan files under deployments/ and the flow: no server needed.

prefect.yaml cannot include files, so scripts/render_deployments.py copies each plan file into it (a YAML
anchor per plan, aliased by the deployments). These tests fail when the two drift apart, when a plan would
not validate, or when the Prefect server would refuse a deployment's parameters.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from deployments import render as rd
from elasticache_migrate.plan import load_plan, validate_plan

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "prefect.yaml"


def deployments() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(PREFECT_YAML.read_text())
    return {d["name"]: d for d in data["deployments"]}


def test_prefect_yaml_is_rendered_from_the_plan_files() -> None:
    text = PREFECT_YAML.read_text()
    assert rd.render(text) == text, (
        "prefect.yaml differs from deployments/<name>.yaml: run `python -m scripts.render_deployments`")


def test_every_deployment_plan_is_its_plan_file() -> None:
    text = PREFECT_YAML.read_text()
    names = rd.plan_names(text)
    deps = deployments()
    assert set(names) == {"maintenance-window", "production-example"}
    for name, dep in deps.items():
        plan = dep["parameters"]["plan"]
        sources = [n for n in names if rd.load_plan_file(n) == plan]
        assert len(sources) == 1, f"deployment {name}: its plan is not exactly one of the plan files"
    assert deps["maintenance-window"]["parameters"]["plan"] == load_plan_file_raw("maintenance-window")
    assert deps["preflight"]["parameters"]["plan"] == load_plan_file_raw("maintenance-window")
    assert deps["on-demand"]["parameters"]["plan"] == load_plan_file_raw("production-example")


def load_plan_file_raw(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "deployments" / f"{name}.yaml").read_text())["plan"])


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_plan_in_prefect_yaml_validates(name: str) -> None:
    params = deployments()[name]["parameters"]
    plan = validate_plan(params["plan"])
    assert plan.migration_id
    # the check the Prefect server runs on `prefect deploy` (flow parameter schema, `required` ignored)
    assert rd.prefect_parameter_problems(params) is None


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "deployments").glob("*.yaml") if p.name != "rehearsal.yaml"),
                         ids=lambda p: p.name)
def test_every_plan_file_loads(path: Path) -> None:
    """Every plan file but the rehearsal template (its ports are filled in by scripts/rehearse.py)."""
    assert load_plan(path).migration_id


def test_deployments_schedules_limits_and_pool() -> None:
    deps = deployments()
    assert set(deps) == {"maintenance-window", "on-demand", "preflight"}
    for dep in deps.values():
        assert dep["work_pool"]["name"] == "redis-migrations"
        assert dep["entrypoint"] == "flows/migrate.py:migrate_redis"
        for sched in dep.get("schedules", []):
            ZoneInfo(sched["timezone"])  # a real IANA zone
            assert sched["active"] is False, "example schedules must not arm a migration when deployed"
    window = deps["maintenance-window"]
    assert window["schedules"] == [{"cron": "0 2 * * SUN", "timezone": "Europe/Berlin", "active": False,
                                    "slug": "sunday-0200-berlin"}]
    for name in ("maintenance-window", "on-demand"):
        # Prefect 3.8.8 drops a paused run's deployment concurrency slot and the run crashes at its next lease
        # renewal (410 Gone): one window per source is the flow's window lock, never a concurrency limit.
        assert "concurrency_limit" not in deps[name], name
    assert "schedules" not in deps["on-demand"]
    assert deps["preflight"]["parameters"]["plan_only"] is True
    assert "plan_only" not in window["parameters"] and "plan_only" not in deps["on-demand"]["parameters"]


def test_the_server_check_refuses_what_the_flow_refuses() -> None:
    """A misspelt field is refused by the same schema check the server runs on `prefect deploy`."""
    plan = load_plan_file_raw("production-example")
    plan["approval"]["timeout"] = 60
    problem = rd.prefect_parameter_problems({"plan": plan})
    assert problem is not None and "'timeout' was unexpected" in problem


def test_no_plan_field_is_named_required() -> None:
    """Prefect 3.8 deletes every schema key named `required` before checking a deployment's parameters, so
    a plan field of that name could never be deployed; the old `approval.required` gets a rename hint."""
    from elasticache_migrate.errors import PlanError

    plan = load_plan_file_raw("production-example")
    plan["approval"]["enabled"] = False
    assert rd.prefect_parameter_problems({"plan": plan}) is None
    del plan["approval"]["enabled"]
    plan["approval"]["required"] = True
    with pytest.raises(PlanError, match="approval.required is now approval.enabled"):
        validate_plan(plan)


def copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "deployments").mkdir(parents=True)
    shutil.copy(PREFECT_YAML, root / "prefect.yaml")
    for p in (ROOT / "deployments").glob("*.yaml"):
        shutil.copy(p, root / "deployments" / p.name)
    return root


def test_check_fails_when_a_plan_file_changes_and_render_fixes_it(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_project(tmp_path)
    assert rd.main(["--check", "--root", str(root)]) == 0
    pf = root / "deployments" / "maintenance-window.yaml"
    pf.write_text(pf.read_text().replace("timeout_seconds: 5400", "timeout_seconds: 7200"))
    assert rd.main(["--check", "--root", str(root)]) == 1
    assert "+        timeout_seconds: 7200" in capsys.readouterr().out
    assert rd.main(["--root", str(root)]) == 0
    assert rd.main(["--check", "--root", str(root)]) == 0
    data = yaml.safe_load((root / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in data["deployments"]}
    assert by_name["maintenance-window"]["parameters"]["plan"]["approval"]["timeout_seconds"] == 7200
    assert by_name["preflight"]["parameters"]["plan"]["approval"]["timeout_seconds"] == 7200
    text = (root / "prefect.yaml").read_text()
    assert "# The real window, on a schedule." in text  # hand-written parts and comments survive


def test_check_fails_when_the_block_is_edited_by_hand(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    p = root / "prefect.yaml"
    p.write_text(p.read_text().replace("replication_group_id: shop-sessions", "replication_group_id: other", 1))
    assert rd.main(["--check", "--root", str(root)]) == 1


def test_invalid_or_missing_plan_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_project(tmp_path)
    pf = root / "deployments" / "production-example.yaml"
    pf.write_text(pf.read_text().replace("engine: redis", "engine: memcached"))
    assert rd.main(["--root", str(root)]) == 2
    assert "target.engine" in capsys.readouterr().err
    pf.unlink()
    assert rd.main(["--root", str(root)]) == 2
    assert "production-example.yaml does not exist" in capsys.readouterr().err
