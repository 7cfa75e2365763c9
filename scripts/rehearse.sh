#!/usr/bin/env bash
# Set up (a virtualenv with the pinned packages) and run a full migration rehearsal on this machine.
# Needs only Python 3.11 with venv: no root, no Docker engine, no AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() {  # pip, minus the noise of pip.conf entries that point at absent local indexes
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the pinned packages into .venv (about a minute the first time)…"
  pip_install -r requirements.txt
  echo "$want" > "$stamp"
fi
exec .venv/bin/python -m scripts.rehearse "$@"
