"""An in-process cluster: Deployments, their pods, GPU capacity and start-up delays.

Implements :class:`load_emulator.cluster.ClusterView` for the embedded demo and what-if runs; the
driver changes it with ``scale``, ``set_template`` and ``add_deployment`` (phase 2: the actuator's
fake port writes here). Rules, kept close to Kubernetes:

- A pod needs ``cards_per_replica`` cards of its accelerator's card type (``accCount *
  multiplicity``). Pods are bound in creation order while cards are free; the rest stay Pending
  (``ready_since_s`` None) until cards are freed. ``capacity=None`` means unlimited.
- A bound pod is Ready its start-up time after binding (image pull + model load): the entry of
  ``startup_by_model_s`` for its (model, accelerator) (model-data's ``startupS``), else
  ``startup_delay_s``. Real start-up times differ by model and GPU (weights to load, CUDA graphs
  to capture), so one delay for every pod hides what a start-up-aware policy is for.
- Scale-down deletes Pending pods first, then not-yet-Ready ones, then the newest Ready ones
  (the ReplicaSet controller's ranking).
- A template change (accelerator or batch size) starts a rollout: new pods for the full replica
  count at once (a 100% surge), old pods deleted as new ones become Ready, except that
  ``floor(max_unavailable * replicas)`` old pods go at once. Deleted pods free their cards at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from load_emulator.cluster import DeploymentState, PodState


@dataclass
class _Pod:
    name: str
    generation: int
    accelerator: str
    max_batch: int
    card_type: str
    cards: int
    created_s: float
    startup_s: float
    bound_s: float | None = None


@dataclass
class _Deployment:
    namespace: str
    name: str
    server_name: str
    model: str
    service_class: str
    accelerator: str
    max_batch: int
    replicas: int
    labels: dict[str, str]
    generation: int = 1
    pods: list[_Pod] = field(default_factory=list)


class EmulatedCluster:
    def __init__(
        self,
        accelerators: Mapping[str, tuple[str, int]],
        capacity: Mapping[str, int] | None = None,
        startup_delay_s: float = 60.0,
        max_unavailable: float = 0.25,
        startup_by_model_s: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        """``accelerators``: unit name -> (card type, cards per unit); ``capacity``: cards per type;
        ``startup_by_model_s``: (model, accelerator unit) -> start-up seconds, for the pairs that
        have their own (the rest take ``startup_delay_s``)."""
        self.accelerators = dict(accelerators)
        self.capacity = dict(capacity) if capacity is not None else None
        self.startup_delay_s = startup_delay_s
        self.startup_by_model_s = dict(startup_by_model_s or {})
        self.max_unavailable = max_unavailable
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        self._acc_count: dict[tuple[str, str], int] = {}
        self._pod_counter = 0
        self._now_s = 0.0

    # --- driver API -------------------------------------------------------------------------------
    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        model: str,
        accelerator: str,
        max_batch: int,
        replicas: int,
        acc_count: int = 1,
        server_name: str = "",
        service_class: str = "Free",
        now_s: float = 0.0,
    ) -> None:
        key = (namespace, name)
        if key in self._deployments:
            raise ValueError(f"deployment {namespace}/{name} exists")
        self._check_accelerator(accelerator)
        labels = {"inferno.server.managed": "true", "inferno.server.model": model}
        self._deployments[key] = _Deployment(
            namespace,
            name,
            server_name or name,
            model,
            service_class,
            accelerator,
            max_batch,
            replicas,
            labels,
        )
        self._acc_count[key] = max(acc_count, 1)
        self.reconcile(now_s)

    def scale(self, namespace: str, name: str, replicas: int, now_s: float) -> None:
        self._get(namespace, name).replicas = max(replicas, 0)
        self.reconcile(now_s)

    def set_template(
        self,
        namespace: str,
        name: str,
        now_s: float,
        *,
        accelerator: str | None = None,
        max_batch: int | None = None,
        acc_count: int | None = None,
    ) -> None:
        dep = self._get(namespace, name)
        changed = False
        if accelerator is not None and accelerator != dep.accelerator:
            self._check_accelerator(accelerator)
            dep.accelerator, changed = accelerator, True
        if max_batch is not None and max_batch != dep.max_batch:
            dep.max_batch, changed = max_batch, True
        if acc_count is not None and max(acc_count, 1) != self._acc_count[(namespace, name)]:
            self._acc_count[(namespace, name)], changed = max(acc_count, 1), True
        if changed:
            dep.generation += 1
        self.reconcile(now_s)

    def used_cards(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for dep in self._deployments.values():
            for pod in dep.pods:
                if pod.bound_s is not None:
                    used[pod.card_type] = used.get(pod.card_type, 0) + pod.cards
        return used

    # --- ClusterView --------------------------------------------------------------------------------
    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        self.reconcile(now_s)
        return [self._state(dep) for dep in self._deployments.values()]

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self._get(namespace, name).labels.update(labels)

    # --- internals ----------------------------------------------------------------------------------
    def reconcile(self, now_s: float) -> None:
        """Converge pods to each Deployment's spec as of ``now_s`` and bind Pending pods."""
        self._now_s = max(self._now_s, now_s)
        for dep in self._deployments.values():
            new = [p for p in dep.pods if p.generation == dep.generation]
            for _ in range(dep.replicas - len(new)):
                dep.pods.append(self._new_pod(dep))
            surplus = len(new) - dep.replicas
            if surplus > 0:
                for pod in sorted(new, key=self._deletion_rank)[:surplus]:
                    dep.pods.remove(pod)
            old = [p for p in dep.pods if p.generation != dep.generation]
            if old:
                new_ready = sum(1 for p in dep.pods if p.generation == dep.generation and self._ready(p))
                keep = max(dep.replicas - new_ready - math.floor(self.max_unavailable * dep.replicas), 0)
                for pod in sorted(old, key=self._deletion_rank)[: max(len(old) - keep, 0)]:
                    dep.pods.remove(pod)
        self._bind_pending()

    def _bind_pending(self) -> None:
        free = None if self.capacity is None else dict(self.capacity)
        if free is not None:
            for card_type, used in self.used_cards().items():
                free[card_type] = free.get(card_type, 0) - used
        pending = sorted(
            (p for d in self._deployments.values() for p in d.pods if p.bound_s is None),
            key=lambda p: (p.created_s, p.name),
        )
        for pod in pending:
            if free is None:
                pod.bound_s = max(pod.created_s, self._now_s)
            elif free.get(pod.card_type, 0) >= pod.cards:
                free[pod.card_type] -= pod.cards
                pod.bound_s = max(pod.created_s, self._now_s)

    def _ready(self, pod: _Pod) -> bool:
        return pod.bound_s is not None and pod.bound_s + pod.startup_s <= self._now_s

    def startup_s(self, model: str, accelerator: str) -> float:
        """The start-up time of a new pod of ``model`` on ``accelerator``, seconds."""
        return self.startup_by_model_s.get((model, accelerator), self.startup_delay_s)

    def _deletion_rank(self, pod: _Pod) -> tuple[int, int, float]:
        """Sort key: first to delete first (Pending, then not Ready, then newest)."""
        return (0 if pod.bound_s is None else 1, 1 if self._ready(pod) else 0, -pod.created_s)

    def _new_pod(self, dep: _Deployment) -> _Pod:
        self._pod_counter += 1
        card_type, per_unit = self.accelerators[dep.accelerator]
        template = hashlib.blake2b(f"{dep.name}/{dep.generation}".encode(), digest_size=5).hexdigest()
        return _Pod(
            name=f"{dep.name}-{template}-{self._pod_counter:05d}",
            generation=dep.generation,
            accelerator=dep.accelerator,
            max_batch=dep.max_batch,
            card_type=card_type,
            cards=per_unit * self._acc_count[(dep.namespace, dep.name)],
            created_s=self._now_s,
            startup_s=self.startup_s(dep.model, dep.accelerator),
        )

    def _state(self, dep: _Deployment) -> DeploymentState:
        pods = tuple(
            PodState(
                p.name,
                p.accelerator,
                p.max_batch,
                None if p.bound_s is None else p.bound_s + p.startup_s,
            )
            for p in dep.pods
        )
        return DeploymentState(
            namespace=dep.namespace,
            name=dep.name,
            model=dep.model,
            accelerator=dep.accelerator,
            max_batch=dep.max_batch,
            replicas=dep.replicas,
            server_name=dep.server_name,
            service_class=dep.service_class,
            pods=pods,
            labels=dict(dep.labels),
        )

    def _get(self, namespace: str, name: str) -> _Deployment:
        try:
            return self._deployments[(namespace, name)]
        except KeyError:
            raise KeyError(f"no deployment {namespace}/{name}") from None

    def _check_accelerator(self, accelerator: str) -> None:
        if accelerator not in self.accelerators:
            raise ValueError(f"unknown accelerator {accelerator!r}; known: {sorted(self.accelerators)}")
