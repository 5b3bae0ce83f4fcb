"""Hypothesis strategies for hostile input: odd JSON values and mutations of valid documents.

``HOSTILE_NUMBERS``: the values that break naive code (NaN, +-Inf, negatives, 1e308, integers past
64 bits). ``JSON``: any JSON-like value with those leaves and unicode strings. ``mutated(doc)``: a
valid document with one node replaced, deleted or wrapped; the path says which (for the message).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

HOSTILE_NUMBERS = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        -1,
        -1e-9,
        0,
        0.0,
        -0.0,
        1e308,
        -1e308,
        5e-324,
        2**63,
        2**64 + 1,
        -(2**63) - 1,
        10**40,
        1.5,
    ]
)
TEXT = st.text(max_size=24) | st.sampled_from(
    ["", " ", "NaN", "Infinity", "-1", "1e999", "\u0000", "😀" * 40]
)
LEAVES = st.none() | st.booleans() | HOSTILE_NUMBERS | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=16,
)


def nodes(doc: Any, path: Path = ()) -> list[Path]:
    """Paths of every node (containers and leaves) of a JSON document, the root first."""
    out: list[Path] = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += nodes(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += nodes(value, (*path, index))
    return out


def _parent(doc: Any, path: Path) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def replace(doc: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    _parent(out, path)[path[-1]] = value
    return out


def delete(doc: Any, path: Path) -> Any:
    if not path:
        return None
    out = copy.deepcopy(doc)
    parent = _parent(out, path)
    del parent[path[-1]]
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_paths: int = 4000) -> tuple[str, Any]:
    """(description, document) with one node of ``doc`` replaced by hostile JSON or removed."""
    paths = nodes(doc)[:max_paths]
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["replace", "delete", "wrap", "number"]))
    if how == "delete" and path:
        return f"delete {list(path)}", delete(doc, path)
    if how == "wrap":
        old = copy.deepcopy(_parent(doc, path)[path[-1]]) if path else doc
        return f"wrap {list(path)} in a list", replace(doc, path, [old])
    value = draw(HOSTILE_NUMBERS if how == "number" else JSON)
    return f"set {list(path)} = {value!r:.60}", replace(doc, path, value)


def dumps(value: Any) -> bytes:
    """JSON text as Python writes it: NaN and Infinity become the (non-standard) bare tokens."""
    return json.dumps(value, allow_nan=True).encode()
