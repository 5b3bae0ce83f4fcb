"""The cluster view port: what the emulator needs to know about each managed Deployment.

Two adapters implement :class:`ClusterView`: :class:`load_emulator.emulated_cluster.EmulatedCluster`
(in-process, for the demo and what-if runs) and
:class:`load_emulator.k8s_cluster.KubernetesClusterView` (the Kubernetes API, for e2e tests).
The engine (:mod:`load_emulator.engine`) reads ``deployments(now_s)``; the label walker
(:mod:`load_emulator.labels`) writes with ``set_labels``.

Times in a view are the engine's virtual seconds: a pod's ``ready_since_s`` is when it became (or
will become) Ready; ``None`` means Pending or not Ready. Each pod carries its own accelerator and
batch size because during a rollout old and new pods differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contract import labels

# The contract's label vocabulary, under the names the emulator's modules use.
LABEL_MANAGED = labels.MANAGED
LABEL_NAME = labels.NAME
LABEL_MODEL = labels.MODEL
LABEL_CLASS = labels.CLASS
LABEL_ACCELERATOR = labels.ACCELERATOR
LABEL_MAX_BATCH = labels.MAX_BATCH
LABEL_LOAD_RPM = labels.LOAD_RPM
LABEL_LOAD_TOKENS = labels.LOAD_NUM_TOKENS
LABEL_LOAD_IN_TOKENS = labels.LOAD_IN_TOKENS
LABEL_LOAD_OUT_TOKENS = labels.LOAD_OUT_TOKENS
MANAGED_SELECTOR = labels.DEFAULT_MANAGED_SELECTOR
BATCH_FLAG = "--max-num-seqs"  # vLLM's batch size flag in the container args
# The files of the static-data ConfigMap (inferno's data files that do not change per cycle).
STATIC_FILES = (
    "accelerator-data.json",
    "model-data.json",
    "serviceclass-data.json",
    "optimizer-data.json",
    "placement-data.json",
)


@dataclass(frozen=True)
class PodState:
    name: str
    accelerator: str
    max_batch: int
    ready_since_s: float | None = None


@dataclass(frozen=True)
class DeploymentState:
    namespace: str
    name: str
    model: str
    accelerator: str
    max_batch: int
    replicas: int
    server_name: str = ""
    service_class: str = "Free"
    pods: tuple[PodState, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def server(self) -> str:
        """The inferno server name: label ``inferno.server.name``, else the Deployment name."""
        return self.server_name or self.name

    @property
    def ready_replicas(self) -> int:
        return sum(1 for p in self.pods if p.ready_since_s is not None)

    @property
    def rolling_out(self) -> bool:
        """Pods of an older template (another accelerator or batch) remain, or pods are not ready
        yet (as ``collector.kube_adapter.rolling_out`` reads a real Deployment's status)."""
        return any(
            p.accelerator != self.accelerator or p.max_batch != self.max_batch or p.ready_since_s is None
            for p in self.pods
        )


class ClusterView(Protocol):
    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        """Every managed Deployment with its pods, as of ``now_s`` (engine seconds)."""
        ...

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        """Merge ``labels`` into the Deployment's metadata labels."""
        ...


def parse_max_num_seqs(args: Sequence[str]) -> int | None:
    """``--max-num-seqs N`` or ``--max-num-seqs=N`` from container args (last one wins)."""
    found: int | None = None
    for i, arg in enumerate(args):
        value: str | None = None
        if arg.startswith(f"{BATCH_FLAG}="):
            value = arg.split("=", 1)[1]
        elif arg == BATCH_FLAG and i + 1 < len(args):
            value = args[i + 1]
        if value is not None:
            try:
                found = int(value)
            except ValueError:
                continue
    return found if found is not None and found > 0 else None


def label_value(value: float) -> str:
    """A number as a valid label value: integers without a decimal point, else 2 decimals."""
    return str(round(value)) if abs(value - round(value)) < 1e-9 else f"{value:.2f}"
