"""Managed Deployments -> candidate servers, or skipped Deployments with the reason.

Called by :mod:`collector.assemble` each cycle. A Deployment is skipped (never scaled; the reason
is reported in ``CollectResult.skipped`` and logged as a warning) when:

- a label or annotation is malformed (:mod:`collector.labels`);
- its model is not in model-data, its class not in serviceclass-data, its class has no target for
  its model, or its current accelerator is not in accelerator-data (checked here, so one bad
  Deployment cannot make the whole system data invalid);
- two or more Deployments claim the same server name (all of them are skipped: which one would win
  depends on list order, and a name flip would move load history between them);
- two objects of different kinds share a namespace and name (a Deployment and a LeaderWorkerSet
  ``llama``): their pods and series could not be told apart, so both are skipped.

A kind scaled through /scale only has no pod template to move to another GPU type: its server is
planned with ``keep_accelerator`` set, so the optimizer keeps its current type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from collector.labels import LabelError, ServerLabels, parse_server_labels
from collector.metrics import Key
from collector.ports import DeploymentInfo
from contract.collect import SkippedDeployment
from contract.data.system import SystemData
from contract.labels import NAME
from contract.targets import Shape


@dataclass(frozen=True)
class Candidate:
    deployment: DeploymentInfo
    labels: ServerLabels

    @property
    def key(self) -> Key:
        return (self.deployment.namespace, self.deployment.name)


def reference_problem(labels: ServerLabels, system: SystemData) -> str | None:
    """Why the labels do not fit the static data, or None."""
    models = system.perf_by_model()
    if labels.model not in models:
        return f"model {labels.model!r} is not in model-data (known: {', '.join(sorted(models)) or 'none'})"
    classes = system.class_by_name()
    spec = classes.get(labels.service_class)
    if spec is None:
        known = ", ".join(sorted(classes)) or "none"
        return f"class {labels.service_class!r} is not in serviceclass-data (known: {known})"
    if spec.target_for(labels.model) is None:
        return f"class {labels.service_class!r} has no target for model {labels.model!r}"
    if labels.accelerator and labels.accelerator not in system.accelerator_by_name():
        return f"accelerator {labels.accelerator!r} is not in accelerator-data"
    return None


def select_servers(
    deployments: list[DeploymentInfo], system: SystemData
) -> tuple[list[Candidate], list[SkippedDeployment]]:
    """Candidates in (namespace, name) order, and the skipped Deployments with their reasons."""
    candidates: list[Candidate] = []
    skipped: list[SkippedDeployment] = []
    kinds_of: dict[tuple[str, str], set[str]] = {}
    for dep in deployments:
        kinds_of.setdefault((dep.namespace, dep.name), set()).add(dep.target.kind or dep.target.name)
    for dep in sorted(deployments, key=lambda d: (d.namespace, d.name, d.target.name)):
        kind = dep.target.kind or dep.target.name

        def skip(reason: str, dep: DeploymentInfo = dep, kind: str = kind) -> None:
            skipped.append(
                SkippedDeployment(namespace=dep.namespace, deployment=dep.name, reason=reason, kind=kind)
            )

        if len(kinds := kinds_of[(dep.namespace, dep.name)]) > 1:
            skip(f"{', '.join(sorted(kinds))} share the name {dep.namespace}/{dep.name}: rename one")
            continue
        try:
            labels = parse_server_labels(dep.name, dep.labels, dep.annotations)
        except LabelError as exc:
            skip(str(exc))
            continue
        problem = reference_problem(labels, system)
        if problem:
            skip(problem)
            continue
        if dep.target.shape is Shape.SCALE:
            labels = labels.model_copy(update={"keep_accelerator": True})
        candidates.append(Candidate(dep, labels))
    claims = Counter(c.labels.server for c in candidates)
    unique: list[Candidate] = []
    for cand in candidates:
        if claims[cand.labels.server] == 1:
            unique.append(cand)
            continue
        others = sorted(
            f"{c.deployment.namespace}/{c.deployment.name}"
            for c in candidates
            if c.labels.server == cand.labels.server and c is not cand
        )
        reason = (
            f"server name {cand.labels.server!r} is also claimed by {', '.join(others)}; "
            f"give each Deployment its own {NAME} label"
        )
        dep = cand.deployment
        skipped.append(SkippedDeployment(namespace=dep.namespace, deployment=dep.name, reason=reason))
    return unique, skipped
