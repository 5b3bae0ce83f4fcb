"""Where a card type runs: node label key/value and the extended resource per card (pure).

From placement-data (:class:`contract.collect.Placement`) for the chosen accelerator's card
type. Fields left at the contract's defaults come from the settings: AMD types (by prefix,
e.g. ``MI300X``) use ``amd.com/gpu.product`` / ``amd.com/gpu``, others ``nvidia.com/gpu.product`` /
``nvidia.com/gpu`` (both configurable). ``foreign_*`` are the other GPU keys and resources known
to this cycle: a Deployment moving to this card type has them removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actuator.settings import ActuatorSettings
from contract.collect import Placement

DEFAULT_KEY = Placement.model_fields["node_label_key"].default
DEFAULT_RESOURCE = Placement.model_fields["resource"].default


@dataclass(frozen=True)
class ResolvedPlacement:
    node_label_key: str
    node_label_value: str
    resource: str
    foreign_selector_keys: frozenset[str]
    foreign_resources: frozenset[str]


def is_amd(card_type: str, label_value: str, settings: ActuatorSettings) -> bool:
    prefixes = tuple(p.upper() for p in settings.amd_type_prefixes if p)
    return bool(prefixes) and (
        card_type.upper().startswith(prefixes) or label_value.upper().startswith("AMD")
    )


def _key_and_resource(entry: Placement, settings: ActuatorSettings) -> tuple[str, str]:
    """Explicit values win; the contract's defaults (also what a JSON round trip fills in) do not."""
    amd = is_amd(entry.type, entry.node_label_value, settings)
    key, resource = entry.node_label_key, entry.resource
    if key == DEFAULT_KEY:
        key = settings.amd_node_label_key if amd else settings.node_label_key
    if resource == DEFAULT_RESOURCE:
        resource = settings.amd_gpu_resource if amd else settings.gpu_resource
    return key, resource


def resolve_placement(
    card_type: str, placement: Sequence[Placement], settings: ActuatorSettings
) -> ResolvedPlacement | None:
    """The placement of ``card_type`` (exact match, then case-insensitive); None when unknown."""
    entry = next((p for p in placement if p.type == card_type), None)
    if entry is None:
        entry = next((p for p in placement if p.type.lower() == card_type.lower()), None)
    if entry is None:
        return None
    key, resource = _key_and_resource(entry, settings)
    all_keys = {settings.node_label_key, settings.amd_node_label_key}
    all_resources = {settings.gpu_resource, settings.amd_gpu_resource}
    for other in placement:
        other_key, other_resource = _key_and_resource(other, settings)
        all_keys.add(other_key)
        all_resources.add(other_resource)
    return ResolvedPlacement(
        node_label_key=key,
        node_label_value=entry.node_label_value,
        resource=resource,
        foreign_selector_keys=frozenset(all_keys - {key}),
        foreign_resources=frozenset(all_resources - {resource}),
    )
