#!/usr/bin/env bash
# Set up (a virtualenv with the pinned packages) and run a full migration rehearsal on this machine.
# Needs only Python 3.11 with venv: no root, no Docker engine, no AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_venv .requirements.sha requirements.txt
exec .venv/bin/python -m scripts.rehearse "$@"
