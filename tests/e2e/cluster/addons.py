"""Add-ons of the local control plane: upstream CRDs and controllers built from their Go modules.

Role: the one place that knows which releases of LeaderWorkerSet, KServe and prometheus-adapter
the e2e tests use, where their CRD YAML lives inside each module, and how to build the two
binaries the tests run (the LWS controller manager and prometheus-adapter). Callers:
`binaries.main` (install.sh builds what is missing), `local_cluster.LocalCluster` (installs the
CRDs) and the e2e harness (starts the binaries). Standard library only.

CRDs are copied verbatim out of the module download (`go mod download -json` gives its
directory), so the apiserver validates every patch against the schema the upstream project ships.
KServe's controller is not built: its module pulls Knative and Istio and does not fit the CI
budget; the tests only need its CRD schema (RawDeployment objects are data to the apiserver).
"""

from __future__ import annotations

from pathlib import Path

from .gobuild import GoTarget, module_dir

LWS_VERSION = "v0.7.0"
KSERVE_VERSION = "v0.15.2"
PROM_ADAPTER_VERSION = "v0.12.0"

LWS_BINARY = "lws-controller"
PROM_ADAPTER_BINARY = "prometheus-adapter"
ADDON_BINARIES = (LWS_BINARY, PROM_ADAPTER_BINARY)

# (module, version, path inside the module) -> installed as <name>.yaml next to the binaries.
CRD_SOURCES: dict[str, tuple[str, str, str]] = {
    "crd-leaderworkersets": (
        "sigs.k8s.io/lws",
        LWS_VERSION,
        "config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml",
    ),
    "crd-inferenceservices": (
        "github.com/kserve/kserve",
        KSERVE_VERSION,
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
    ),
    # LWS's own webhook configurations (rewritten at start to point at the loopback server).
    "lws-webhooks": ("sigs.k8s.io/lws", LWS_VERSION, "config/webhook/manifests.yaml"),
}
CRD_FILES = tuple(f"{name}.yaml" for name in CRD_SOURCES)


def addon_bin_dir(cache_root: Path) -> Path:
    """Versioned so that bumping a release never reuses a stale binary or CRD."""
    versions = f"lws-{LWS_VERSION}_kserve-{KSERVE_VERSION}_padapter-{PROM_ADAPTER_VERSION}"
    return cache_root / "bin" / f"addons_{versions}"


def addon_targets(missing: list[str]) -> list[GoTarget]:
    targets = []
    if LWS_BINARY in missing:
        targets.append(
            GoTarget(
                "lws-" + LWS_VERSION, "sigs.k8s.io/lws", LWS_VERSION, {LWS_BINARY: "sigs.k8s.io/lws/cmd"}
            )
        )
    if PROM_ADAPTER_BINARY in missing:
        targets.append(
            GoTarget(
                "prometheus-adapter-" + PROM_ADAPTER_VERSION,
                "sigs.k8s.io/prometheus-adapter",
                PROM_ADAPTER_VERSION,
                {PROM_ADAPTER_BINARY: "sigs.k8s.io/prometheus-adapter/cmd/adapter"},
            )
        )
    return targets


def write_crds(bin_dir: Path) -> None:
    """Copy each CRD file that is missing from its module into bin_dir (atomic rename)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, (module, version, rel) in CRD_SOURCES.items():
        target = bin_dir / f"{name}.yaml"
        if target.is_file():
            continue
        text = (module_dir(module, version) / rel).read_text()
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)
        print(f"[inferno-e2e] {name}: {target} (from {module}@{version})", flush=True)
