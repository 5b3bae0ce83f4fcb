#!/usr/bin/env bash
# Refresh requirements-client.lock: inference-perf (scripts/client-requirements.in) and everything it
# needs at exact versions, with the hash of every file PyPI has for them, resolved for the client's
# Python (3.12 on Linux; scripts/setup-client.sh says how it is found). Uses pip-tools from a
# throwaway virtualenv. Reads PyPI only (or $PIP_INDEX_URL).
#   bash scripts/lock-client.sh [pip-compile arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/client-python.sh
PY=$(client_python) || { echo "lock-client: no Python >= 3.12 found (set CLIENT_PYTHON)" >&2; exit 1; }
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PY" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet 'pip-tools==7.5.*'
env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="bash scripts/lock-client.sh" "$tools/venv/bin/pip-compile" --quiet \
  --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
  --no-emit-trusted-host --output-file requirements-client.lock "$@" scripts/client-requirements.in
echo "lock-client: requirements-client.lock: $(grep -c '^[a-z]' requirements-client.lock) packages ($("$PY" --version))"
