"""The architecture's rules, checked: the engine never imports Prefect (nor the flow's own layers), and every
card step has its task module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "elasticache_migrate"
CARD_STEPS = ["quiesce", "bgsave_wait", "extract", "upload", "grant", "create", "wait_available", "switch_config",
              "verify", "preflight", "approval", "fence"]


def _imports(path: Path) -> set[str]:
    """Every module name a file imports, at any depth (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted(ENGINE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_engine_module_imports_prefect_or_the_flow(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in {"prefect", "tasks", "flows", "approval_service",
                                                             "scripts", "benchmarks", "tests", "deployments"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: the engine must stay Prefect-free"


def test_importing_every_engine_module_loads_no_prefect() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import elasticache_migrate as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'elasticache_migrate.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps({'modules': len(names), 'prefect': sorted(m for m in sys.modules if m.split('.')[0] == "
        "'prefect')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["modules"] > 30 and seen["prefect"] == []


def test_every_card_step_has_its_task_module() -> None:
    for step in CARD_STEPS:
        path = ROOT / "tasks" / f"{step}.py"
        assert path.is_file(), f"tasks/{step}.py is missing"
        assert "prefect" in {m.split(".")[0] for m in _imports(path)}, f"tasks/{step}.py is not a Prefect task"


def test_tasks_never_call_another_tasks_fn() -> None:
    for path in sorted((ROOT / "tasks").glob("*.py")):
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute) and n.attr == "fn"]
        assert not calls, f"{path.relative_to(ROOT)} calls a task's .fn: call the engine function instead"
