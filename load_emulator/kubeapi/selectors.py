"""Label and field selectors, parsed from the query string the client sends and matched on dicts.

Label selectors: comma-separated requirements ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist); ``!=`` and ``notin`` also match
objects without the key, as in Kubernetes. Field selectors: ``path=v``, ``path==v``, ``path!=v``
on any dotted path of the object (``metadata.name``, ``metadata.namespace``, ``status.phase``,
``spec.nodeName``, ...); a missing field reads as ``""``. (The real server allows only a few
fields per kind and refuses others; this one is lenient.) Used by :mod:`.store` lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

_SET = re.compile(r"^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$")
_NOT_EXISTS = re.compile(r"^!\s*([^\s=!(),]+)$")
_EQUALITY = re.compile(r"^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$")
_EXISTS = re.compile(r"^([^\s=!(),]+)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector string; raises 400 BadRequest on a requirement it cannot read."""
    reqs: list[Requirement] = []
    for part in _split_top_level(text or ""):
        if m := _SET.match(part):
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif m := _NOT_EXISTS.match(part):
            reqs.append(Requirement(m.group(1), "!exists"))
        elif m := _EQUALITY.match(part):
            op = "notin" if m.group(2) == "!=" else "in"
            reqs.append(Requirement(m.group(1), op, frozenset({m.group(3)})))
        elif m := _EXISTS.match(part):
            reqs.append(Requirement(m.group(1), "exists"))
        else:
            raise bad_request(f'unable to parse requirement: "{part}"')
    return tuple(reqs)


def labels_match(reqs: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_label_selector(selector: Mapping[str, Any] | None) -> tuple[Requirement, ...]:
    """A ``LabelSelector`` object (``matchLabels`` and ``matchExpressions``) as requirements."""
    selector = selector or {}
    reqs = [Requirement(k, "in", frozenset({str(v)})) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(str(expr.get("operator")))
        if op is None:
            raise bad_request(f"unsupported label selector operator {expr.get('operator')!r}")
        reqs.append(Requirement(str(expr.get("key")), op, frozenset(expr.get("values") or [])))
    return tuple(reqs)


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """``matchLabels`` as the ``a=b,c=d`` string a ``Scale`` status carries."""
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        node: Any = obj
        for part in self.path:
            node = node.get(part) if isinstance(node, Mapping) else None
        text = "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)
        return (text != self.value) if self.negate else (text == self.value)


def parse_field_selector(text: str | None) -> tuple[FieldRequirement, ...]:
    reqs: list[FieldRequirement] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f'invalid field selector: "{part}"')
        reqs.append(FieldRequirement(tuple(m.group(1).split(".")), m.group(3).strip(), m.group(2) == "!="))
    return tuple(reqs)


def fields_match(reqs: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
