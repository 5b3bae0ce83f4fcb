"""Find, or build from Go modules, the control-plane binaries the e2e tests run.

Role: the single place that knows which versions we use, where binaries may come from and how to
build the missing ones. Callers: `install.sh` (runs `python3 -m e2e.cluster.binaries build`),
`local_cluster.LocalCluster` (resolves paths at start) and `tests/e2e/conftest.py` (skip or fail
when something is missing). Standard library only, so it runs before any pip install.

Lookup order per binary: $INFERNO_E2E_BIN_DIR, $KUBEBUILDER_ASSETS (setup-envtest), our cache
(~/.cache/inferno-e2e/bin/<versions>/), then $PATH. A found etcd older than 3.5.13 is skipped:
kube-apiserver 1.3x relies on RequestWatchProgress and older etcd makes every watch lag seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import addons
from .gobuild import GoTarget, build_targets, module_dir

K8S_VERSION = "v1.36.3"
STAGING_VERSION = "v0.36.3"  # staging modules (k8s.io/api, ...) are tagged v0.<minor>.<patch>
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
MIN_ETCD = (3, 5, 13)

# kwok needs Stage objects to know how to play nodes and pods; kwokctl embeds these defaults,
# the bare kwok binary does not, so install copies them from the kwok module next to the binary.
KWOK_STAGES_FILE = "kwok-stages.yaml"
KWOK_STAGE_SOURCES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ALL_BINARIES = ("etcd", *KUBE_BINARIES, "kwok")


def cache_root() -> Path:
    """Cache directory shared by all checkouts; $INFERNO_E2E_CACHE overrides it."""
    if env := os.environ.get("INFERNO_E2E_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "inferno-e2e"


def cache_bin_dir() -> Path:
    """Versioned so that bumping a version above never reuses a stale binary."""
    return cache_root() / "bin" / f"k8s-{K8S_VERSION}_etcd-{ETCD_VERSION}_kwok-{KWOK_VERSION}"


def search_dirs() -> list[Path]:
    dirs = [Path(os.environ[v]) for v in ("INFERNO_E2E_BIN_DIR", "KUBEBUILDER_ASSETS") if os.environ.get(v)]
    dirs.append(cache_bin_dir())
    dirs.extend(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p)
    return dirs


def etcd_version(path: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], check=False, capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in match.groups()) if match else None


def _usable(name: str, path: Path) -> bool:
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    if name == "etcd":
        version = etcd_version(path)
        return version is not None and version >= MIN_ETCD
    return True


def find_binary(name: str) -> Path | None:
    for directory in search_dirs():
        if _usable(name, directory / name):
            return directory / name
    return None


def find_kwok_stages(kwok: Path | None) -> Path | None:
    candidates = [kwok.parent / KWOK_STAGES_FILE] if kwok else []
    candidates.append(cache_bin_dir() / KWOK_STAGES_FILE)
    return next((c for c in candidates if c.is_file()), None)


def resolve() -> tuple[dict[str, Path], list[str]]:
    """Return (found name -> path, missing names); the kwok stages file counts as an artifact."""
    found: dict[str, Path] = {}
    for name in ALL_BINARIES:
        if (path := find_binary(name)) is not None:
            found[name] = path
    if (stages := find_kwok_stages(found.get("kwok"))) is not None:
        found[KWOK_STAGES_FILE] = stages
    return found, [n for n in (*ALL_BINARIES, KWOK_STAGES_FILE) if n not in found]


def write_kwok_stages(target: Path) -> None:
    source = module_dir("sigs.k8s.io/kwok", KWOK_VERSION, timeout_s=600)
    docs = [(source / rel).read_text().strip() for rel in KWOK_STAGE_SOURCES]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n---\n".join(docs) + "\n")
    tmp.replace(target)
    print(f"[inferno-e2e] kwok stages: {target}")


def _kube_ldflags() -> str:
    # Stamp the version the way hack/lib/version.sh does, so /version and skew checks read 1.36.
    major, minor = K8S_VERSION.lstrip("v").split(".")[:2]
    stamps = {"gitVersion": K8S_VERSION, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    return " ".join(f"-X {pkg}.{key}={value}" for pkg in pkgs for key, value in stamps.items())


def _kube_target(wanted: list[str]) -> GoTarget:
    return GoTarget(
        name=f"kubernetes-{K8S_VERSION}",
        module="k8s.io/kubernetes",
        version=K8S_VERSION,
        packages={n: f"k8s.io/kubernetes/cmd/{n}" for n in wanted},
        staging_version=STAGING_VERSION,
        extra_ldflags=_kube_ldflags(),
    )


def targets_for(missing: list[str]) -> list[GoTarget]:
    targets: list[GoTarget] = []
    if "etcd" in missing:
        # The etcd server module's root package is the etcd main itself; no Go source of ours needed.
        targets.append(
            GoTarget(
                "etcd-" + ETCD_VERSION,
                "go.etcd.io/etcd/server/v3",
                ETCD_VERSION,
                {"etcd": "go.etcd.io/etcd/server/v3"},
            )
        )
    if kube := [n for n in KUBE_BINARIES if n in missing]:
        targets.append(_kube_target(kube))
    if "kwok" in missing:
        targets.append(
            GoTarget(
                "kwok-" + KWOK_VERSION,
                "sigs.k8s.io/kwok",
                KWOK_VERSION,
                {"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
            )
        )
    return targets


def kube_minor_versions(found: dict[str, Path]) -> dict[str, str]:
    """`--version` of each kube binary, e.g. {"kube-apiserver": "v1.36.3"} ("?" if unreadable)."""
    versions = {}
    for name in KUBE_BINARIES:
        if name in found:
            try:
                out = subprocess.run(
                    [str(found[name]), "--version"], check=False, capture_output=True, text=True, timeout=20
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            match = re.search(r"v\d+\.\d+\.\d+\S*", out)
            versions[name] = match.group(0) if match else "?"
    return versions


def resolve_addons() -> tuple[dict[str, Path], list[str]]:
    """Add-on binaries and CRD files (addons.py): found name -> path, and the missing names."""
    directory = addons.addon_bin_dir(cache_root())
    names = (*addons.ADDON_BINARIES, *addons.CRD_FILES)
    found = {n: directory / n for n in names if (directory / n).is_file()}
    return found, [n for n in names if n not in found]


def build_addons() -> list[str]:
    """Build the missing add-on binaries and copy the missing CRDs; returns what is still missing."""
    _, missing = resolve_addons()
    directory = addons.addon_bin_dir(cache_root())
    if targets := addons.addon_targets(missing):
        build_targets(targets, cache_root() / "work", directory)
    if any(n in missing for n in addons.CRD_FILES):
        addons.write_crds(directory)
    return resolve_addons()[1]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "build-addons":
        still = build_addons()
        print("[inferno-e2e] add-ons " + (f"missing: {', '.join(still)}" if still else "present"))
        return 1 if still else 0
    found, missing = resolve()
    for name, path in found.items():
        print(f"[inferno-e2e] {name}: {path}")
    if command == "build" and missing:
        if shutil.which("go") is None:
            print("[inferno-e2e] ERROR: 'go' (>= 1.26) is needed to build: " + ", ".join(missing))
            return 1
        if targets := targets_for(missing):
            build_targets(targets, cache_root() / "work", cache_bin_dir())
        if KWOK_STAGES_FILE in missing:
            write_kwok_stages(cache_bin_dir() / KWOK_STAGES_FILE)
        found, missing = resolve()
    if missing:
        print("[inferno-e2e] missing: " + ", ".join(missing) + " (run tests/e2e/cluster/install.sh)")
        return 1
    versions = kube_minor_versions(found)
    if len({".".join(v.split(".")[:2]) for v in versions.values()}) > 1:
        # Mixed sources (e.g. envtest's apiserver + our controller-manager): skew is unsupported.
        print(f"[inferno-e2e] WARNING: Kubernetes binaries differ in minor version: {versions}")
    print(f"[inferno-e2e] all binaries present (cache: {cache_bin_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
