#!/usr/bin/env bash
# The demo on the local REAL cluster: etcd, kube-apiserver, controller-manager, scheduler and KWOK
# (fake GPU nodes) plus a Prometheus, all on 127.0.0.1 (tests/e2e/cluster). The sample Deployments
# are applied, the load emulator plays their pods and Prometheus scrapes it, the four services run
# as processes, and the live table is printed each cycle. The first lines print a
#   KUBECONFIG=... kubectl get deploy -n inferno-demo -w
# command to watch the scaling from another terminal. Ctrl-C or --duration-s stops everything.
# Options: the same as scripts/demo.sh (bash scripts/demo-cluster.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! PYTHONPATH=tests .venv/bin/python -m e2e.cluster.binaries check >/dev/null 2>&1; then
  echo "demo: the local cluster's binaries are missing: building them once with tests/e2e/cluster/install.sh" >&2
  echo "demo: this takes about 10-20 min on 2 cores (Go build of etcd, Kubernetes, KWOK); cached in ~/.cache/inferno-e2e afterwards" >&2
  bash tests/e2e/cluster/install.sh
fi
exec .venv/bin/python -m load_emulator.demo --cluster "$@"
