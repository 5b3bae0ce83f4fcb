#!/usr/bin/env bash
# Idempotent set-up of the benchmark client's virtualenv, .venv-client: inference-perf, which needs
# Python >= 3.12 (the project runs on 3.11), from requirements-client.lock with hashes (PyPI only;
# no download outside the package registry). Called by setup.sh; the tests and benchmarks that
# drive the emulated vLLM with a real client run .venv-client/bin/inference-perf.
# Re-installs only when the lock changed. INFERNO_SKIP_CLIENT=1 leaves it out (those tests then
# skip, except under CI=true where they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${INFERNO_SKIP_CLIENT:-0}" = "1" ]; then
  echo "setup-client: skipped (INFERNO_SKIP_CLIENT=1)"
  exit 0
fi
source scripts/client-python.sh
stamp=.venv-client/.installed-$(sha256sum requirements-client.lock | cut -c1-16)
[ -f "$stamp" ] && exit 0
PY=$(client_python) || {
  echo "setup-client: no Python >= 3.12 found for inference-perf (set CLIENT_PYTHON to one)" >&2
  exit 1
}
echo "setup-client: installing inference-perf into .venv-client with $("$PY" --version) (first run takes a few minutes)"
rm -rf .venv-client
"$PY" -m venv .venv-client
.venv-client/bin/python -m pip install --quiet --upgrade pip
.venv-client/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-client.lock
.venv-client/bin/python -m pip check
.venv-client/bin/inference-perf --help >/dev/null
touch "$stamp"
