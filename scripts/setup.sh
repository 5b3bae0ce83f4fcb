#!/usr/bin/env bash
# Idempotent Python set-up: a virtualenv in .venv with the project and its dev tools installed.
# The runtime dependencies come from requirements.lock (the versions and hashes the image ships,
# scripts/lock.sh refreshes it), then the project and its dev tools; a dev tool that moved a locked
# version fails the set-up, so the tests run on what ships. Re-installs only when pyproject.toml or
# requirements.lock changed since the last run. Called by test.sh and demo.sh (test.sh then builds
# the benchmark client's own virtualenv, scripts/setup-client.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv || { apt-get update -qq && apt-get install -y -qq python3-venv && "$PY" -m venv .venv; }
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dependencies into .venv (first run takes a minute or two)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  .venv/bin/python - <<'PY'
import importlib.metadata as md, re, sys
pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", open("requirements.lock").read(), re.M)
moved = [f"{n} {v} -> {md.version(n)}" for n, v in pins if md.version(n) != v]
if moved:
    sys.exit("setup: the dev tools moved locked versions (" + ", ".join(moved) + "); run scripts/lock.sh")
PY
  rm -f .venv/.installed-*
  touch "$stamp"
fi
