#!/usr/bin/env bash
# Build the image from the Dockerfile with buildah: no Docker engine and no container registry.
#   bash scripts/build-image.sh                    # -> localhost/inferno-autoscaler:<version>
#   bash scripts/build-image.sh --tag inferno-autoscaler:dev
#   BASE_IMAGE=python:3.11-slim bash scripts/build-image.sh   # a base from a registry instead
#   bash scripts/build-image.sh --tools            # only install the tools and write the config
#   bash scripts/build-image.sh --print-env        # the environment podman needs for this storage
# Options: --context DIR (default: the repository), --target STAGE, --tag NAME; arguments after
# `--` go to `buildah bud`. With a Docker engine, `docker build` (README) does the same.
#
# What it does, idempotently: installs buildah, podman, mmdebstrap, catatonit and runc from
# Debian when missing (root or sudo); keeps its own container storage (vfs) and configuration in
# ~/.cache/inferno-image (INFERNO_IMAGE_CACHE); unless BASE_IMAGE is set, makes the base image
# once from Debian bookworm (python3 3.11, its venv module, CA certificates) with mmdebstrap and
# keeps it; then runs `buildah bud --layers` (chroot isolation), so a rebuild with the same
# requirements.lock reuses the dependency layer. The build hands pip this machine's CA bundle as
# a secret ($PIP_CERT, $SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt) and $PIP_INDEX_URL
# when set. Network: Debian's mirror (INFERNO_DEBIAN_MIRROR) and the package index only.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache=${INFERNO_IMAGE_CACHE:-$HOME/.cache/inferno-image}
mirror=${INFERNO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
run_dir=${TMPDIR:-/tmp}/inferno-image-run-$(id -u)
log() { echo "[build-image] $*" >&2; }

context=$repo target="" tag="" mode=build
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --context) context=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --tools) mode=tools; shift ;;
    --print-env) mode=env; shift ;;
    --) shift; extra=("$@"); break ;;
    *) log "unknown argument $1 (see the head of $0)"; exit 2 ;;
  esac
done

print_env() {
  echo "CONTAINERS_STORAGE_CONF=$cache/storage.conf"
  echo "CONTAINERS_CONF=$cache/containers.conf"
  echo "BUILDAH_ISOLATION=chroot"
}
if [ "$mode" = env ]; then print_env; exit 0; fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) for: $*"; return 1; fi
}

# Tools, from Debian.
missing=()
for tool in buildah podman mmdebstrap catatonit runc; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    buildah podman mmdebstrap catatonit runc uidmap
fi

# Storage and engine configuration of our own, named by CONTAINERS_STORAGE_CONF / CONTAINERS_CONF:
# vfs (no overlay mounts needed), runc (crun fails on some cgroup set-ups), rlimits under the
# usual hard limits (also for a pod's infra container, which takes them only from here), and
# Debian's catatonit for podman's pause image.
mkdir -p "$cache" "$run_dir"
cat > "$cache/storage.conf.new" <<EOF
[storage]
driver = "vfs"
graphroot = "$cache/storage"
runroot = "$run_dir/storage"
EOF
cat > "$cache/containers.conf.new" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$run_dir/libpod"
helper_binaries_dir = ["/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman", "/usr/bin"]
EOF
for f in storage.conf containers.conf; do
  if cmp -s "$cache/$f.new" "$cache/$f"; then rm "$cache/$f.new"; else mv "$cache/$f.new" "$cache/$f"; fi
done
while IFS= read -r line; do export "${line?}"; done < <(print_env)
if [ "$mode" = tools ]; then log "tools and configuration ready ($cache)"; exit 0; fi

# The base image.
if [ -n "${BASE_IMAGE:-}" ]; then
  base=$BASE_IMAGE
else
  packages=python3,python3-venv,ca-certificates
  key=$(printf '%s\n' bookworm "$packages" minbase merged-usr-hook | sha256sum | cut -c1-12)
  base=localhost/inferno-base:bookworm-$key
  if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    tar=$cache/base-bookworm-$key.tar
    if [ ! -s "$tar" ]; then
      log "making the base image with mmdebstrap (Debian bookworm: $packages)"
      # merged /usr by mmdebstrap's hook rather than Debian's usrmerge package, which needs perl
      mmdebstrap --quiet --variant=minbase --include="$packages" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "${tar%.tar}.partial.tar" "$mirror" < /dev/null
      mv "${tar%.tar}.partial.tar" "$tar"
    fi
    podman import --quiet --change 'CMD ["/bin/sh"]' "$tar" "$base" >/dev/null
  fi
fi

# vfs stores every layer as a full copy (a build takes several GB). Past INFERNO_IMAGE_KEEP_GB
# (default 20) the images no tag holds go, cached layers included; the next build refills them.
used_kb=$(du -sk "$cache/storage" 2>/dev/null | cut -f1)
if [ "${used_kb:-0}" -gt $(( ${INFERNO_IMAGE_KEEP_GB:-20} * 1024 * 1024 )) ]; then
  log "container storage over ${INFERNO_IMAGE_KEEP_GB:-20} GB: removing untagged images"
  podman image prune --force >/dev/null
fi

# The build.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/pyproject.toml" | head -1)
tag=${tag:-localhost/inferno-autoscaler:$version}
args=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version")
if revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null); then args+=(--build-arg "REVISION=$revision"); fi
if source=$(git -C "$repo" remote get-url origin 2>/dev/null); then args+=(--build-arg "SOURCE=$source"); fi
if [ -n "${PIP_INDEX_URL:-}" ]; then args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL"); fi
for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$ca" ] && [ -s "$ca" ]; then args+=(--secret "id=pip-ca,src=$ca"); break; fi
done
if [ -n "$target" ]; then args+=(--target "$target"); fi
log "buildah bud -t $tag (base $base, context $context)"
start_s=$(date +%s)
buildah bud --layers --force-rm --isolation chroot --format oci -t "$tag" "${args[@]}" \
  -f "$context/Dockerfile" "${extra[@]}" "$context"
size=$(podman image inspect --format '{{.Size}}' "$tag")
log "built $tag in $(( $(date +%s) - start_s )) s, $(( size / 1000000 )) MB"
