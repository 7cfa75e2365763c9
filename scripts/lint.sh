#!/usr/bin/env bash
# The project's own checks: ruff (E, F, I, B) everywhere, mypy on flows/, tasks/ and approval_service/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBIN="${PYBIN:-.venv/bin}"
"$PYBIN/ruff" check flows tasks tests scripts benchmarks approval_service
"$PYBIN/mypy" flows tasks approval_service
