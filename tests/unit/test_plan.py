"""elasticache_migrate.plan: what the operator's plan may and may not say, and the errors that tell them which field
to fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from elasticache_migrate.errors import PlanError
from elasticache_migrate.plan import load_plan, replication_group_id_problem, validate_plan


def base() -> dict[str, Any]:
    """The smallest valid plan."""
    return {
        "migration_id": "orders-2024",
        "source": {"kind": "docker", "container": "web-redis"},
        "staging": {"bucket": "my-staging"},
        "target": {"replication_group_id": "app-cache"},
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """base() with one dotted field set."""
    data = copy.deepcopy(base())
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return data


def problem(data: dict[str, Any]) -> str:
    """The PlanError message validate_plan gives for ``data`` (fails the test if it is accepted)."""
    with pytest.raises(PlanError) as ei:
        validate_plan(data)
    return str(ei.value)


def test_minimal_plan_is_valid_with_safe_defaults() -> None:
    plan = validate_plan(base())
    assert plan.target.engine == "redis"
    assert plan.approval.enabled is True
    assert plan.quiesce.require_no_clients is True
    assert plan.cutover.backend == "none"


# ---- secrets are references, never values ------------------------------------------------------------------

SECRET_FIELDS = [
    "source.redis.password_secret",
    "target.auth_token_secret",
    "quiesce.maintenance_hook_token_secret",
    "notifications.slack_webhook_secret",
]


@pytest.mark.parametrize("field", SECRET_FIELDS)
@pytest.mark.parametrize("literal", ["hunter2", "redis://:pw@h", "https://hooks.slack.com/services/T/B/x",
                                     "env:", "env:has space", "vault:x"])
def test_secret_fields_refuse_literal_secrets(field: str, literal: str) -> None:
    data = with_(field, literal)
    if field == "target.auth_token_secret":
        data["target"]["transit_encryption"] = True
    msg = problem(data)
    assert field in msg
    assert literal not in msg  # the error names the field; it never echoes what may be a password


@pytest.mark.parametrize("field", SECRET_FIELDS)
@pytest.mark.parametrize("ref", ["env:REDIS_PASSWORD", "prefect:source-redis-password"])
def test_secret_fields_accept_references(field: str, ref: str) -> None:
    data = with_(field, ref)
    if field == "target.auth_token_secret":
        data["target"]["transit_encryption"] = True
    plan = validate_plan(data)
    node: Any = plan
    for part in field.split("."):
        node = getattr(node, part)
    assert node == ref


# ---- replication group id ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gid", ["a", "a" * 40, "app-cache-2", "App1"])
def test_replication_group_id_valid(gid: str) -> None:
    assert replication_group_id_problem(gid) is None
    assert validate_plan(with_("target.replication_group_id", gid)).target.replication_group_id == gid.lower()


@pytest.mark.parametrize(
    ("gid", "why"),
    [
        ("", "1–40"),
        ("a" * 41, "1–40"),
        ("1cache", "start with a letter"),
        ("-cache", "start with a letter"),
        ("app_cache", "letters, digits, hyphens"),
        ("app--cache", "--"),
        ("app-cache-", "end with '-'"),
    ],
)
def test_replication_group_id_invalid(gid: str, why: str) -> None:
    assert why in (replication_group_id_problem(gid) or "")
    msg = problem(with_("target.replication_group_id", gid))
    assert "target.replication_group_id" in msg and why in msg


# ---- cross-field rules -------------------------------------------------------------------------------------

def test_docker_source_needs_container() -> None:
    msg = problem(with_("source", {"kind": "docker"}))
    assert "source.container is required" in msg


def test_host_source_needs_no_container() -> None:
    assert validate_plan(with_("source", {"kind": "host"})).source.container is None


def test_auth_token_needs_transit_encryption() -> None:
    msg = problem(with_("target.auth_token_secret", "env:TOKEN"))
    assert "transit_encryption" in msg
    ok = with_("target.auth_token_secret", "env:TOKEN")
    ok["target"]["transit_encryption"] = True
    assert validate_plan(ok).target.auth_token_secret == "env:TOKEN"


def test_multi_az_needs_replicas() -> None:
    data = with_("target.multi_az", True)
    data["target"]["replicas"] = 0
    assert "replicas >= 1" in problem(data)
    data["target"]["replicas"] = 1
    assert validate_plan(data).target.multi_az is True


def test_shards_need_cluster_mode() -> None:
    data = with_("target.shards", 3)
    assert "cluster_mode" in problem(data)
    data["target"]["cluster_mode"] = True
    assert validate_plan(data).target.shards == 3


def test_key_prefix_with_comma_refused() -> None:
    msg = problem(with_("staging.key_prefix", "redis,migrations"))
    assert "staging.key_prefix" in msg and "comma" in msg


@pytest.mark.parametrize(("backend", "field"), [("ssm", "ssm_parameter"), ("dotenv", "dotenv_path")])
def test_cutover_backend_needs_its_field(backend: str, field: str) -> None:
    msg = problem(with_("cutover", {"backend": backend}))
    assert f"cutover.{field} is required" in msg
    plan = validate_plan(with_("cutover", {"backend": backend, field: "/app/redis_url"}))
    assert getattr(plan.cutover, field) == "/app/redis_url"


@pytest.mark.parametrize("template", ["{scheme}://{hostname}:{port}", "{0}", "{host.name}", "{port[0]}", "{scheme"])
def test_value_template_with_unknown_placeholder_refused(template: str) -> None:
    msg = problem(with_("cutover.value_template", template))
    assert "value_template may use only {scheme}, {host}, {port}" in msg


def test_value_template_with_known_placeholders_accepted() -> None:
    plan = validate_plan(with_("cutover.value_template", "{scheme}://{host}:{port}/1?ssl_cert_reqs=none"))
    assert plan.cutover.value_template.startswith("{scheme}")


def test_unknown_field_refused() -> None:
    assert "target.replicaz" in problem(with_("target.replicaz", 2))


def test_bad_migration_id_refused() -> None:
    assert "migration_id" in problem(with_("migration_id", "Orders_2024"))


# ---- load_plan ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrapped", [False, True])
def test_load_plan_from_yaml(tmp_path: Path, wrapped: bool) -> None:
    p = tmp_path / "plan.yaml"
    body = base()
    p.write_text(yaml.safe_dump({"plan": body} if wrapped else body))
    plan = load_plan(p)
    assert plan.migration_id == "orders-2024"
    assert plan.source.container == "web-redis"
    assert plan.target.replication_group_id == "app-cache"


def test_load_plan_overrides_merge_nested(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text(yaml.safe_dump(base()))
    plan = load_plan(p, {"target": {"replicas": 2}})
    assert plan.target.replicas == 2
    assert plan.target.replication_group_id == "app-cache"  # the rest of the section stays


def test_load_plan_lists_every_bad_field(tmp_path: Path) -> None:
    data = base()
    data["target"]["replication_group_id"] = "9bad"
    data["staging"]["key_prefix"] = "a,b"
    data["source"]["redis"] = {"password_secret": "hunter2", "port": 70000}
    p = tmp_path / "plan.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(PlanError) as ei:
        load_plan(p)
    msg = str(ei.value)
    for field in ("target.replication_group_id", "staging.key_prefix", "source.redis.password_secret",
                  "source.redis.port"):
        assert field in msg
    assert "hunter2" not in msg  # never echo a secret someone pasted by mistake
    assert isinstance(ei.value.__cause__, ValidationError)


def test_load_plan_missing_file_names_remedy(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as ei:
        load_plan(tmp_path / "nope.yaml")
    assert "does not exist" in ei.value.message
    assert ei.value.remedy == "pass the path of a plan YAML file"


def test_load_plan_not_yaml(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text("migration_id: [unclosed\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(p)


def test_load_plan_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(PlanError, match="mapping"):
        load_plan(p)


# ---- derived values ------------------------------------------------------------------------------------------

def test_object_key_uses_prefix_and_id() -> None:
    assert validate_plan(base()).object_key == "redis-migrations/orders-2024/dump.rdb"
    assert validate_plan(with_("staging.key_prefix", "/ops/redis/")).object_key == "ops/redis/orders-2024/dump.rdb"
    assert validate_plan(with_("staging.key_prefix", "")).object_key == "orders-2024/dump.rdb"


def test_workdir_expands_home_and_adds_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    plan = validate_plan(with_("staging.workdir", "~/mig"))
    assert plan.workdir == tmp_path / "mig" / "orders-2024"


# ---- the window: how writes are stopped, the pause's deadline, the removed source_after_cutover ------------------

def test_window_defaults_block_writes_and_a_dead_run_pause_ends_in_15_minutes() -> None:
    plan = validate_plan(base())
    assert plan.quiesce.during_window == "block" and plan.quiesce.max_pause_seconds == 900


@pytest.mark.parametrize("after", ["unpause", "keep_paused"])
def test_source_after_cutover_was_removed_and_the_error_says_why(after: str) -> None:
    msg = problem(with_("cutover.source_after_cutover", after))
    assert "cutover.source_after_cutover was removed" in msg
    assert "lost acknowledged writes" in msg and "fenced at cutover" in msg and "delete the key" in msg


def test_max_pause_below_30_seconds_refused_and_during_window_checked() -> None:
    assert "quiesce.max_pause_seconds" in problem(with_("quiesce.max_pause_seconds", 29))
    assert validate_plan(with_("quiesce.max_pause_seconds", 30)).quiesce.max_pause_seconds == 30
    assert "quiesce.during_window" in problem(with_("quiesce.during_window", "pause"))
    assert validate_plan(with_("quiesce.during_window", "refuse")).quiesce.during_window == "refuse"
