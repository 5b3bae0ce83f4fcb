#!/usr/bin/env bash
# Refresh requirements.lock: every runtime dependency of pyproject.toml (and the setuptools that
# builds the wheel) at an exact version, with the hash of every file PyPI has for it.
#   bash scripts/lock.sh             # re-resolve to the newest versions pyproject.toml allows
#   bash scripts/lock.sh --upgrade-package numpy   # other arguments go to pip-compile
# The lock is resolved for CPython 3.11 on Linux (the image's Python): run it under a python3.11
# (PYTHON=python3.11). It uses pip-tools from a throwaway virtualenv, so .venv is untouched; then
# run scripts/setup.sh (it reinstalls when the lock changes) and the tests, and rebuild the image.
# Reads PyPI only (or $PIP_INDEX_URL); needs no container tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "lock: the image runs Python 3.11; run with PYTHON=python3.11 (found $("$PY" --version 2>&1))" >&2
  exit 1
fi
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PY" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet 'pip-tools==7.7.*'
# No find-links or index URL from this machine's pip configuration goes into the file.
env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh" "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
  --build-deps-for wheel --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --output-file requirements.lock "$@" pyproject.toml
echo "lock: requirements.lock: $(grep -c '^[a-z]' requirements.lock) packages"
