"""The client-behaviour benchmark in its quick mode (so it cannot rot), and the facts the README states from it.

Real redis-server 7.0, redis-py 8.1, a real Celery worker and a real RQ worker, each window opened and ended with
the raw server commands. The figures themselves are not asserted (it is a benchmark, not a timed test); what is
asserted is what each client sees, which the README's table says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_what_each_client_sees(tmp_path: Path) -> None:
    need("redis-7.0")
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "benchmarks/client_behaviour.py", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| server | mode | window | client |" in proc.stdout
    rows = {(r["mode"], r["client"]): r for r in json.loads(out.read_text())}
    assert set(rows) == {(m, c) for m in ("block", "refuse", "fence") for c in ("redis-py defaults", "celery", "rq")}

    block = rows["block", "redis-py defaults"]            # writes wait, then land on the source
    assert block["result"] == "ok" and block["landed"] == "on the source" and block["call_s"] >= 0.5
    refuse = rows["refuse", "redis-py defaults"]          # writes fail at once, nothing lands; fine once restored
    assert "NOREPLICAS" in refuse["result"] and refuse["landed"].startswith("nowhere")
    assert refuse["call_s"] < 0.5 and refuse["after"].startswith("works")
    for client in ("redis-py defaults", "celery", "rq"):  # the fence: the held write fails, nothing lands
        fence = rows["fence", client]
        assert fence["result"] != "ok" and fence["landed"].startswith("nowhere"), fence
    assert "NOREPLICAS" in rows["fence", "redis-py defaults"]["after"]
    for client in ("celery", "rq"):                       # a job sent during a block window runs after it
        assert rows["block", client]["landed"].startswith("ran"), rows["block", client]
        assert rows["block", client]["after"].startswith("a new job runs"), rows["block", client]
