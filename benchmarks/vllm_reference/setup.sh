#!/usr/bin/env bash
# Creates (or reuses) the Python venv that holds vLLM for the reference benchmark and the golden
# traces. About 9.5 GB on disk (vLLM 0.33.0 with torch and its CUDA libraries; the scheduler runs
# on CPU, no GPU needed). Not part of CI: the project's tests never import vLLM.
#
#   bash benchmarks/vllm_reference/setup.sh            # vLLM 0.33.0 (the V1 reference)
#   bash benchmarks/vllm_reference/setup.sh 0.8.5      # an older release with the V0 engine
#
# The venv lives in $INFERNO_VLLM_VENV, or ~/.cache/inferno-vllm/venv-<version>. Python 3.11
# ($PYTHON to choose another interpreter).
set -euo pipefail

VLLM_VERSION="${1:-0.33.0}"
VENV="${INFERNO_VLLM_VENV:-$HOME/.cache/inferno-vllm/venv-$VLLM_VERSION}"
PYTHON="${PYTHON:-python3.11}"

installed() {
    "$VENV/bin/pip" show vllm 2>/dev/null | sed -n 's/^Version: //p'
}

if [ -x "$VENV/bin/python" ] && [ "$(installed)" = "$VLLM_VERSION" ]; then
    echo "vLLM $VLLM_VERSION already in $VENV"
    exit 0
fi
echo "installing vLLM $VLLM_VERSION into $VENV (about 9.5 GB, several minutes)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install "vllm==$VLLM_VERSION"
echo "vLLM $(installed) in $VENV"
