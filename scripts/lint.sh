#!/usr/bin/env bash
# The project's own checks, also run by .ci/run: ruff (E, F, I, B, BLE, RUF100) everywhere; mypy --strict on the
# engine package (pyproject.toml), mypy on the flow, its tasks, the approval service, scripts, benchmarks and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBIN="${PYBIN:-.venv/bin}"
"$PYBIN/ruff" check elasticache_migrate flows tasks deployments approval_service scripts benchmarks tests
"$PYBIN/mypy" elasticache_migrate flows tasks deployments approval_service scripts benchmarks tests
