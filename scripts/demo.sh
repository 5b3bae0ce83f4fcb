#!/usr/bin/env bash
# The README's demo: the whole autoscaling loop (collector, optimizer, actuator, controller as real
# processes) against an emulated Kubernetes API with fake GPU nodes, driven by the load emulator.
# Loopback only; nothing to build. Options: bash scripts/demo.sh --help
# With --cluster: the same demo on the local real cluster (scripts/demo-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "--cluster" ]; then
    exec bash scripts/demo-cluster.sh "$@"
  fi
done
bash scripts/setup.sh
exec .venv/bin/python -m load_emulator.demo "$@"
