#!/usr/bin/env bash
# Create (or update) the deployments of prefect.yaml on the Prefect server at $PREFECT_API_URL.
#   1. refuse a prefect.yaml whose plans differ from deployments/<name>.yaml (scripts/render_deployments.py)
#   2. create the process work pool `redis-migrations` if it does not exist (`prefect deploy` needs it first)
#   3. prefect --no-prompt deploy --all (arguments are passed on, e.g. --name maintenance-window instead)
# Run it from the checkout the worker will run the flow from: the deployments' pull step records this path.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"              # PYTHON=/path/to/python to use another interpreter
[ -x "$PY" ] || command -v "$PY" >/dev/null || PY=python3
export PWD="$(pwd)"                           # prefect.yaml's pull step records $PWD: this checkout
: "${PREFECT_API_URL:?set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api}"
"$PY" -m scripts.render_deployments --check
POOL=redis-migrations
if ! "$PY" -m prefect work-pool inspect "$POOL" >/dev/null 2>&1; then
  "$PY" -m prefect work-pool create "$POOL" --type process
fi
if [ $# -eq 0 ]; then set -- --all; fi
exec "$PY" -m prefect --no-prompt deploy "$@"
