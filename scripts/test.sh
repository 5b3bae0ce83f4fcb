#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, lint, type check, unit + simulation + e2e tests.
# Usage: scripts/test.sh [extra pytest args]. Set INFERNO_SKIP_E2E=1 to leave out the real cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-client.sh  # .venv-client: inference-perf (Python >= 3.12) for tests/load
PY=.venv/bin/python
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
if [ "${INFERNO_SKIP_E2E:-0}" != "1" ]; then
  echo "== e2e environment (Kubernetes control plane, KWOK, Prometheus)"
  bash tests/e2e/cluster/install.sh
  export PATH="$PWD/.venv/bin:$PATH"
  echo "== pytest (unit, sim, load, e2e)"
  exec "$PY" -m pytest tests "$@"
else
  echo "== pytest (unit, sim, load)"
  exec "$PY" -m pytest tests/unit tests/sim tests/load "$@"
fi
