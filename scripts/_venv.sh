# Shared by scripts/rehearse.sh and scripts/test.sh (sourced, not run): the project's virtualenv.
PY="${PYTHON:-python3}"

pip_install() {  # pip, minus the noise of pip.conf entries that point at absent local indexes
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}

# ensure_venv STAMP REQUIREMENTS...: create .venv if needed; install when the requirement files (or the
# constraints, which pin every transitive version) changed.
ensure_venv() {
  local stamp=".venv/$1" want
  shift
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  want=$(cat "$@" constraints.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing the pinned packages into .venv (about a minute the first time)…"
    pip_install -r "$1" -c constraints.txt
    echo "$want" > "$stamp"
  fi
}
