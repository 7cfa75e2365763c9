"""The engine package as a user installs it: ``pip install .`` into a fresh virtualenv without Prefect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_installs_with_pip_and_imports_without_prefect(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    installed = subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                "-c", str(ROOT / "constraints.txt"), str(ROOT)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-4000:]
    code = (
        "import importlib, importlib.util, pkgutil, sys\n"
        "assert importlib.util.find_spec('prefect') is None, 'prefect is installed in the fresh venv'\n"
        "import elasticache_migrate as p\n"
        "assert 'site-packages' in p.__path__[0], p.__path__\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'elasticache_migrate.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "from elasticache_migrate.rdb import scan_rdb\n"
        "print(len(names))\n"
    )
    ran = subprocess.run([py, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert int(ran.stdout.strip()) > 30
