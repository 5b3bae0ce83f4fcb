#!/usr/bin/env bash
# Install what the e2e tests need; idempotent, safe to re-run (CI calls it before every run).
#   - Prometheus from Debian's `prometheus` package (apt-get; only when missing),
#   - etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built from their Go
#     modules with the local Go toolchain into ~/.cache/inferno-e2e/bin/<versions>/ (reused later;
#     binaries found via $INFERNO_E2E_BIN_DIR, $KUBEBUILDER_ASSETS or PATH are used instead),
#   - buildah, podman, mmdebstrap, catatonit and runc from Debian (scripts/build-image.sh --tools).
# Needs: Debian as root (or sudo) for apt, Go >= 1.26, python3, openssl, network access to the
# Debian mirror and the Go module proxy only. First build: ~10-20 min on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tests_dir="$(cd "$here/../.." && pwd)"
log() { echo "[inferno-e2e] $*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "ERROR: need root (or sudo) for: $*"; return 1; fi
}

apt_install() {
    # Prevent the package's postinst from starting a system-wide Prometheus service: the tests
    # run their own instance on a free loopback port.
    local policy=/usr/sbin/policy-rc.d added=""
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
        added=1
    fi
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if [ "$rc" = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" || rc=$?
    fi
    if [ -n "$added" ]; then as_root rm -f "$policy"; fi
    return "$rc"
}

need_apt=()
if [ -z "${INFERNO_E2E_PROMETHEUS:-}" ] && ! command -v prometheus >/dev/null; then need_apt+=(prometheus); fi
command -v openssl >/dev/null || need_apt+=(openssl)
if [ "${#need_apt[@]}" -gt 0 ]; then
    log "apt-get install ${need_apt[*]}"
    apt_install "${need_apt[@]}"
fi
# Only the binary is used; stop the packaged service if a systemd machine started it anyway.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    log "note: a system prometheus service is running; the tests do not use it"
fi
log "prometheus: $(command -v prometheus || echo "${INFERNO_E2E_PROMETHEUS:-missing}")"

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
PYTHONPATH="$tests_dir${PYTHONPATH:+:$PYTHONPATH}" python3 -m e2e.cluster.binaries build
# Add-ons (cluster/addons.py): the LWS controller and prometheus-adapter from their Go modules, and
# the LWS and KServe CRDs copied from theirs (first build ~10 min on 2 cores; cached after).
PYTHONPATH="$tests_dir${PYTHONPATH:+:$PYTHONPATH}" python3 -m e2e.cluster.binaries build-addons
# The image test (tests/e2e/test_image.py): buildah, podman, mmdebstrap, catatonit and runc from
# Debian, and the container storage and configuration in ~/.cache/inferno-image.
bash "$tests_dir/../scripts/build-image.sh" --tools
log "install done; run: python -m pytest -m e2e tests/e2e"
