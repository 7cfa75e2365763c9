#!/usr/bin/env bash
# The project's own checks: ruff (E, F, I, B) everywhere, mypy on flows/ and tasks/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBIN="${PYBIN:-.venv/bin}"
"$PYBIN/ruff" check flows tasks tests scripts benchmarks
"$PYBIN/mypy" flows tasks
