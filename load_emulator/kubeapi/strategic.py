"""Strategic merge patch, the subset an autoscaler and kubectl send.

Supported: maps merge recursively and ``null`` deletes a key; lists named in :data:`MERGE_KEYS`
(``containers``, ``initContainers``, ``env``, ``volumes``, ``volumeMounts``, ``ports``,
``conditions``, ``imagePullSecrets``, ``ownerReferences``, ...) merge element by element on their
merge key, a patch element absent from the object is appended; ``finalizers`` merges as a set;
every other list is replaced. Directives: ``$patch: replace`` (in a map: the map replaces the
stored one; as a list element: the list replaces), ``$patch: delete`` (in a map: the map is
removed; in a merged list element: that element is removed), ``$deleteFromPrimitiveList/<key>``;
``$setElementOrder/<key>`` and ``$retainKeys`` are accepted and ignored (order is not enforced).
The merge key is chosen by the field name alone (the real server reads it from the schema: this
is exact for Pods, Deployments, ReplicaSets, Nodes and the other kinds served here).
Called by :func:`.patches.apply_patch`.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import bad_request

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "addresses": "type",
}
SET_LISTS = frozenset({"finalizers"})
_IGNORED_PREFIXES = ("$setElementOrder/", "$retainKeys")
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def _strip(value: Any) -> Any:
    """A patch value stored as is: directives removed, deep-copied."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return copy.deepcopy(value)


def _merge_keyed_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"strategic merge patch: list element without merge key {key!r}: {item!r}")
        found = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if found is not None:
                result.pop(found)
        elif found is None:
            result.append(_strip(item))
        else:
            merged = strategic_merge(result[found], item)
            result[found] = merged if merged is not None else result[found]
    return result


def _merge_list(name: str, current: Any, patch: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(name)
    if key is not None and isinstance(current, list):
        return _merge_keyed_list(current, patch, key)
    if key is not None:
        return _merge_keyed_list([], patch, key)
    if name in SET_LISTS and isinstance(current, list):
        return list(current) + [v for v in patch if v not in current]
    return [_strip(v) for v in patch]


def strategic_merge(target: Any, patch: dict[str, Any]) -> dict[str, Any] | None:
    """Merge ``patch`` into a copy of ``target``; ``None`` when the patch deletes the whole map."""
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return dict(_strip(patch))
    if directive is not None:
        raise bad_request(f"strategic merge patch: unknown $patch directive {directive!r}")
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(_IGNORED_PREFIXES):
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result
