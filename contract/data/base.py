"""Base class for inferno-compatible JSON models.

Inferno's published data files spell some keys differently from file to file (``milpsolver`` vs
``milpSolver``, ``AvgInTokens`` vs ``avgInTokens``), because its Go decoder matched keys without
regard to case. :class:`InfernoModel` does the same: before validation every key is matched,
ignoring case, to a field's alias (or name). Unknown keys are ignored, as inferno ignored them
(e.g. ``arrivalCOV`` in the oldest server files).

Models dump by alias, to the canonical inferno spelling (``serialize_by_alias``), also inside
another body such as the collect result, so whatever this project writes the reference optimizer
can read back.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

MAX_BATCH_SIZE = 65_536
"""Largest batch (vLLM ``--max-num-seqs``) a data file may state. The queueing model keeps one
state per batch slot, so an absurd batch (a typo, a corrupted file) would exhaust memory instead
of failing validation; real engines run at most a few thousand sequences."""


class InfernoModel(BaseModel):
    """Frozen pydantic model whose input keys match field aliases ignoring case."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", serialize_by_alias=True)

    _key_lookup_cache: ClassVar[dict[type, dict[str, str]]] = {}
    _canonical_cache: ClassVar[dict[type, frozenset[str]]] = {}

    @classmethod
    def _key_lookup(cls) -> dict[str, str]:
        cached = InfernoModel._key_lookup_cache.get(cls)
        if cached is None:
            cached = {}
            for name, field in cls.model_fields.items():
                cached[name.lower()] = field.alias or name
                if field.alias:
                    cached[field.alias.lower()] = field.alias
            InfernoModel._key_lookup_cache[cls] = cached
        return cached

    @classmethod
    def _canonical_keys(cls) -> frozenset[str]:
        cached = InfernoModel._canonical_cache.get(cls)
        if cached is None:
            cached = InfernoModel._canonical_cache[cls] = frozenset(cls._key_lookup().values())
        return cached

    @model_validator(mode="before")
    @classmethod
    def _fold_key_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if cls._canonical_keys().issuperset(data):
            return data  # every key already has its canonical spelling: what this project writes
        lookup = cls._key_lookup()
        folded: dict[str, Any] = {}
        for key, value in data.items():
            canonical = lookup.get(str(key).lower(), key) if isinstance(key, str) else key
            # An exact spelling wins over a case-folded twin, so {"milpSolver": x, "milpsolver": y}
            # keeps the canonical key's value.
            if canonical in folded and key != canonical:
                continue
            folded[canonical] = value
        return folded


def require_finite(value: float, what: str) -> float:
    """Reject NaN and infinities with a message naming the field (pydantic accepts them)."""
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value
