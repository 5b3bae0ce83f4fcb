"""PATCH bodies applied to stored objects: JSON merge patch and JSON patch, and the dispatcher.

- ``application/merge-patch+json`` (RFC 7386): maps merge recursively, ``null`` deletes a key,
  every other value (lists included) replaces.
- ``application/json-patch+json`` (RFC 6902): ``add``, ``remove``, ``replace``, ``move``, ``copy``
  and ``test`` on JSON pointers (``~0``/``~1`` escapes, ``-`` appends). A failed operation (path
  missing, ``test`` mismatch) is 422, like kube-apiserver; a malformed body is 400.
- ``application/strategic-merge-patch+json``: see :mod:`.strategic`.
Anything else (``apply-patch+yaml`` included) is 415. Called by :meth:`.store.ObjectStore.patch`.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request
from .strategic import strategic_merge

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge: returns a new value, never mutates ``target``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, message, "Invalid")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _unprocessable(f"invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not for_add):
        raise _unprocessable(f"array index {idx} out of range")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise _unprocessable(f"path /{'/'.join(tokens)} does not exist")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise _unprocessable(f"path /{'/'.join(tokens)} does not exist")


def _remove(doc: Any, tokens: list[str]) -> Any:
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, for_add=False))
    raise _unprocessable(f"path /{'/'.join(tokens)} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return copy.deepcopy(value)
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), copy.deepcopy(value))
    else:
        raise _unprocessable(f"path /{'/'.join(tokens)} does not exist")
    return doc


def _replace(doc: Any, tokens: list[str], value: Any) -> Any:
    _get(doc, tokens)  # the target must exist
    if not tokens:
        return copy.deepcopy(value)
    parent = _parent(doc, tokens)
    key: Any = tokens[-1] if isinstance(parent, dict) else _index(parent, tokens[-1], for_add=False)
    parent[key] = copy.deepcopy(value)
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply the operations in order to a copy of ``target``; all or nothing."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {op!r}")
        kind, tokens = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"JSON patch operation {kind!r} needs a value")
        if kind == "add":
            doc = _add(doc, tokens, op["value"])
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind == "replace":
            doc = _replace(doc, tokens, op["value"])
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _get(doc, tokens) != op["value"]:
                raise _unprocessable(f"testing value {op['path']} failed")
        else:
            raise bad_request(f"unknown JSON patch operation {kind!r}")
    return doc


def apply_patch(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    """Dispatch on the media type (parameters such as ``; charset=utf-8`` ignored)."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media == MERGE_PATCH:
        result = merge_patch(target, body) if isinstance(body, dict) else None
    elif media == JSON_PATCH:
        result = json_patch(target, body)
    elif media == STRATEGIC_PATCH:
        result = strategic_merge(target, body) if isinstance(body, dict) else None
    else:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}",
            "UnsupportedMediaType",
        )
    if not isinstance(result, dict):
        raise bad_request(f"a {media} body must be a JSON object")
    return result
