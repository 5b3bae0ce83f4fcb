"""Build the one strategic merge patch that brings a Deployment to its target (pure).

Patch shape (only the parts that differ are present; ``None`` deletes a map key)::

    {"metadata": {"resourceVersion": "<as read>",                      # optimistic concurrency: 409
                  "labels": {"inferno.server.allocation.accelerator": "A100",
                             "inferno.server.allocation.maxbatchsize": "256"},
                  "annotations": {"inferno.server/accelerator-changed-at":    # accelerator changed:
                                  "2026-11-23T11:50:05Z"}},                    # type-change hold-down
     "spec": {"replicas": 3,                                          # does not roll pods
              "template": {"spec": {                                  # rolls pods
                  "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                                   "amd.com/gpu.product": None},
                  "containers": [{"name": "vllm",                     # merged by name
                                  "args": [..., "--max-num-seqs", "256"],
                                  "resources": {"requests": {"nvidia.com/gpu": "1"},
                                                "limits": {"nvidia.com/gpu": "1"}}}]}}}}

Nothing in place to change -> no patch. Applying the patch and planning again gives no patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actuator.deployment import DeploymentView, flag_value, quantity_int, with_flag_value
from actuator.settings import ActuatorSettings
from contract.labels import ACCELERATOR, ACCELERATOR_CHANGED_AT, MAX_BATCH
from contract.update import FieldChange

PATCH_CONTENT_TYPE = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Target:
    """What the Deployment should look like; ``None`` fields are left alone."""

    replicas: int
    accelerator: str
    max_batch: int
    gpus_per_replica: int
    node_label_key: str | None = None
    node_label_value: str | None = None
    gpu_resource: str | None = None
    foreign_selector_keys: frozenset[str] = frozenset()
    foreign_resources: frozenset[str] = frozenset()
    changed_at: str | None = None
    """RFC 3339 time written to the accelerator-changed-at annotation when the accelerator changes."""


def _batch_patch(
    view: DeploymentView, value: str, settings: ActuatorSettings, container: dict[str, Any], notes: list[str]
) -> str | None:
    """Put the batch size into ``container`` (patch part); return the old value if it changes."""
    if settings.batch_env_var:
        current = view.env.get(settings.batch_env_var, {})
        if current.get("value") == value and "valueFrom" not in current:
            return None
        entry: dict[str, Any] = {"name": settings.batch_env_var, "value": value}
        if "valueFrom" in current:
            entry["valueFrom"] = None
        container["env"] = [entry]
        return str(current.get("value", ""))
    flag = settings.batch_arg
    for part, values in (("args", view.args), ("command", view.command)):
        old = flag_value(values, flag)
        if old is None:
            continue
        if old == value:
            return None
        container[part], _ = with_flag_value(values, flag, value)
        return old
    if not view.args and not view.command:
        notes.append(
            f"batch size not set: container {view.container!r} has no args or command to add {flag} to "
            "(it would replace the image's command); set INFERNO_ACTUATOR_BATCH_ENV_VAR instead"
        )
        return None
    container["args"] = [*view.args, flag, value]
    return ""


def _resource_patch(view: DeploymentView, target: Target) -> tuple[dict[str, Any], str | None]:
    resource = target.gpu_resource
    assert resource is not None
    want = target.gpus_per_replica
    out: dict[str, Any] = {}
    old: str | None = None
    for part, current in (("requests", view.requests), ("limits", view.limits)):
        section: dict[str, Any] = {}
        if quantity_int(current.get(resource)) != want:
            section[resource] = str(want)
            old = current.get(resource, "")
        for other in sorted(target.foreign_resources & current.keys()):
            section[other] = None
            old = old if old is not None else f"{other}={current[other]}"
        if section:
            out[part] = section
    return out, old


def _metadata(view: DeploymentView, labels: dict[str, Any], annotations: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": view.resource_version}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def build_patch(
    view: DeploymentView, target: Target, settings: ActuatorSettings
) -> tuple[dict[str, Any] | None, list[FieldChange], list[str]]:
    """(patch or None, what changes, notes on what could not be managed)."""
    changes: list[FieldChange] = []
    notes: list[str] = []
    labels: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    pod: dict[str, Any] = {}
    container: dict[str, Any] = {"name": view.container}

    if view.replicas != target.replicas:
        spec["replicas"] = target.replicas
        changes.append(
            FieldChange(field="replicas", old=str(view.replicas), new=str(target.replicas), rolls_pods=False)
        )
    if view.labels.get(ACCELERATOR) != target.accelerator:
        labels[ACCELERATOR] = target.accelerator
        if target.changed_at:  # the collector turns it into the type-change hold-down
            annotations[ACCELERATOR_CHANGED_AT] = target.changed_at
        changes.append(
            FieldChange(
                field="accelerator",
                old=view.labels.get(ACCELERATOR, ""),
                new=target.accelerator,
                rolls_pods=False,
            )
        )
    if settings.manage_node_selector and target.node_label_key and target.node_label_value:
        selector: dict[str, Any] = {}
        if view.node_selector.get(target.node_label_key) != target.node_label_value:
            selector[target.node_label_key] = target.node_label_value
        for other in sorted(target.foreign_selector_keys & view.node_selector.keys()):
            selector[other] = None
        if selector:
            pod["nodeSelector"] = selector
            old = ",".join(f"{k}={v}" for k, v in sorted(view.node_selector.items()))
            changes.append(
                FieldChange(
                    field="node-selector",
                    old=old,
                    new=f"{target.node_label_key}={target.node_label_value}",
                    rolls_pods=True,
                )
            )
    if settings.manage_gpu_resources and target.gpu_resource:
        resources, old_gpus = _resource_patch(view, target)
        if resources:
            container["resources"] = resources
            changes.append(
                FieldChange(
                    field="gpus-per-replica",
                    old=old_gpus or "",
                    new=f"{target.gpu_resource}={target.gpus_per_replica}",
                    rolls_pods=True,
                )
            )
    if settings.manage_batch:
        batch = str(target.max_batch)
        before = len(notes)
        old_batch = _batch_patch(view, batch, settings, container, notes)
        if old_batch is not None:
            changes.append(FieldChange(field="max-batch", old=old_batch, new=batch, rolls_pods=True))
        batch_settable = len(notes) == before
        if batch_settable and view.labels.get(MAX_BATCH) != batch:
            labels[MAX_BATCH] = batch
            changes.append(
                FieldChange(
                    field="label:maxbatchsize",
                    old=view.labels.get(MAX_BATCH, ""),
                    new=batch,
                    rolls_pods=False,
                )
            )
    if len(container) > 1:
        pod["containers"] = [container]
    if pod:
        spec["template"] = {"spec": pod}
    if not changes:
        return None, [], notes
    patch: dict[str, Any] = {"metadata": _metadata(view, labels, annotations)}
    if spec:
        patch["spec"] = spec
    return patch, changes, notes
