"""The README stays true to the code: every AWS call the engine makes is in its IAM table, and its Layout names
every package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "elasticache_migrate"

# What the engine calls a boto3 client of each service (checked below, so no client escapes the scan).
CLIENT_NAMES = {"s3": "s3", "ec": "elasticache", "ec2": "ec2", "r53": "route53", "sm": "secretsmanager",
                "ssm": "ssm"}
# boto3 methods whose IAM action is not the method's own name in PascalCase.
ACTIONS = {
    ("s3", "create_multipart_upload"): "s3:PutObject",
    ("s3", "upload_part"): "s3:PutObject",
    ("s3", "complete_multipart_upload"): "s3:PutObject",
    ("s3", "upload_file"): "s3:PutObject",
    ("s3", "upload_fileobj"): "s3:PutObject",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "download_file"): "s3:GetObject",
    ("s3", "get_bucket_encryption"): "s3:GetEncryptionConfiguration",
    ("elasticache", "get_waiter:replication_group_available"): "elasticache:DescribeReplicationGroups",
    ("route53", "get_waiter:resource_record_sets_changed"): "route53:GetChange",
}
NOT_CALLS = {"exceptions", "meta", "close"}
# Permissions a call needs beyond its own action: tags sent with CreateReplicationGroup need AddTagsToResource.
IMPLIED = {"elasticache:CreateReplicationGroup": {"elasticache:AddTagsToResource"}}


def _pascal(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def engine_aws_actions() -> dict[str, set[str]]:
    """IAM action → the engine files that need it, from every call on a boto3 client in the package."""
    found: dict[str, set[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            service = CLIENT_NAMES.get(_receiver(node.func.value) or "")
            method = node.func.attr
            if service is None or method in NOT_CALLS:
                continue
            if method in {"get_waiter", "get_paginator"}:
                arg = node.args[0]
                assert isinstance(arg, ast.Constant), f"{path}: {method} with a computed name"
                key = f"{method}:{arg.value!s}"
                action = ACTIONS.get((service, key)) or f"{service}:{_pascal(str(arg.value))}"
            else:
                action = ACTIONS.get((service, method)) or f"{service}:{_pascal(method)}"
            for needed in {action, *IMPLIED.get(action, set())}:
                found.setdefault(needed, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_boto3_client_in_the_engine_has_a_known_name() -> None:
    """aws_client(plan, "svc") is always assigned to the name the IAM scan knows for that service."""
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
                fn = node.value.func
                if isinstance(fn, ast.Name) and fn.id == "aws_client":
                    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                    service = node.value.args[1]
                    assert isinstance(service, ast.Constant)
                    name = _receiver(target)  # type: ignore[arg-type]
                    assert CLIENT_NAMES.get(name or "") == service.value, (
                        f"{path.relative_to(ROOT)}:{node.lineno}: a {service.value!s} client named {name!r}")


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(title)
    end = text.find("\n### ", start + len(title))
    return text[start:end if end > 0 else None]


def test_the_readme_iam_table_lists_every_aws_call_the_engine_makes() -> None:
    listed = set(re.findall(r"`([a-z0-9]+:[A-Z][A-Za-z0-9]+)`", _readme_section("### 2. AWS credentials")))
    needed = engine_aws_actions()
    assert len(needed) > 20  # the scan sees the engine's calls
    missing = {a: sorted(f) for a, f in needed.items() if a not in listed}
    assert not missing, f"README §2 lacks these IAM actions: {missing}"
    unused = sorted(listed - set(needed))
    assert not unused, f"README §2 lists actions the engine never needs: {unused}"


def test_the_readme_layout_names_every_package_and_task_module() -> None:
    layout = _readme_section("## Layout")
    subpackages = {str(p.parent.relative_to(ENGINE)) + "/" for p in ENGINE.rglob("__init__.py") if p.parent != ENGINE}
    task_modules = {p.stem for p in (ROOT / "tasks").glob("*.py") if not p.name.startswith("_")}
    top = {"elasticache_migrate/", "flows/", "tasks/", "deployments/", "approval_service/", "scripts/", "benchmarks/",
           "tests/unit/", "tests/functional/", "tests/integration/", "prefect.yaml", ".ci/run"}
    absent = sorted(p for p in top if p not in layout)
    absent += sorted(f"elasticache_migrate/{p}" for p in subpackages if not re.search(rf"^ +{re.escape(p)}", layout,
                                                                                         re.M))
    assert not absent, f"README Layout does not name: {absent}"
    unnamed = sorted(m for m in task_modules if not re.search(rf"\b{m}\b", layout))
    assert not unnamed, f"README Layout does not name the task modules: {unnamed}"
