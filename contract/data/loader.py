"""Load and validate inferno data files, with errors that name the file, the entry and the field.

Callers: the optimizer CLI (a directory of files), the optimizer service (a JSON body), the
collector (ConfigMap values, one JSON document per key). Every failure raises :class:`DataError`
whose message a user can act on, e.g.::

    model-data.json: models[3] (name='granite_13b', acc='A100'): perfParms.alpha: Input should be
    greater than or equal to 0 (got -1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from contract.data.system import SystemData

# File name (as inferno publishes them, and as ConfigMap keys) -> SystemData field alias.
DATA_FILES: dict[str, str] = {
    "accelerator-data.json": "accelerators",
    "capacity-data.json": "capacity",
    "model-data.json": "models",
    "serviceclass-data.json": "serviceClasses",
    "server-data.json": "servers",
    "optimizer-data.json": "optimizer",
}
REQUIRED_FILES = ("accelerator-data.json", "model-data.json")


class DataError(ValueError):
    """Input data is unusable; the message says where and why."""


def parse_json(text: str | bytes, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def load_system(documents: Mapping[str, Any], source: str = "system data") -> SystemData:
    """Validate parsed documents keyed by file name (``model-data.json``...) into SystemData."""
    for required in REQUIRED_FILES:
        if required not in documents:
            raise DataError(f"{source}: {required} is missing")
    unknown = sorted(set(documents) - set(DATA_FILES))
    if unknown:
        raise DataError(f"{source}: unexpected data file(s) {unknown}; expected {sorted(DATA_FILES)}")
    payload = {DATA_FILES[name]: doc for name, doc in documents.items()}
    return validate_system(payload, source, by_file=True)


def validate_system(payload: Any, source: str = "system data", *, by_file: bool = False) -> SystemData:
    """Validate one SystemData JSON value (already parsed)."""
    try:
        return SystemData.model_validate(payload)
    except ValidationError as exc:
        raise DataError(format_validation_error(exc, payload, source, by_file=by_file)) from None


def load_system_dir(directory: str | Path) -> SystemData:
    """Read the six inferno files from a directory (missing optional files take defaults)."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory of inferno data files")
    documents: dict[str, Any] = {}
    for name in DATA_FILES:
        path = root / name
        if path.exists():
            documents[name] = parse_json(path.read_bytes(), str(path))
    return load_system(documents, str(root))


def format_validation_error(exc: ValidationError, payload: Any, source: str, *, by_file: bool) -> str:
    """One line per problem: file, entry (with its name), field, message and the bad value."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        where = source
        if by_file and loc and isinstance(loc[0], str):
            file = next((f for f, alias in DATA_FILES.items() if alias.lower() == loc[0].lower()), None)
            if file:
                where, loc = file, loc[1:]
        path = _describe_location(payload, [DATA_FILES.get(where, "")] if by_file else [], loc)
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"{where}: {path}: {err['msg']}{shown}" if path else f"{where}: {err['msg']}{shown}")
    return "\n".join(lines)


def _describe_location(payload: Any, prefix: Sequence[str], loc: Sequence[int | str]) -> str:
    """Render a pydantic location, adding the entry's name/model/acc where the entry has them."""
    node: Any = payload
    for name in prefix:
        node = _child(node, name)
    parts: list[str] = []
    for key in loc:
        node = _child(node, key)
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, dict):
                named = [f"{k}={node[k]!r}" for k in ("name", "model", "acc", "type") if k in node]
                if named:
                    label += f" ({', '.join(named)})"
            parts.append(label)
        elif not key.startswith("function-") and key not in ("model-before", "model-after"):
            parts.append(f".{key}" if parts else key)
    return "".join(parts)


def _child(node: Any, key: int | str) -> Any:
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    if isinstance(node, dict) and isinstance(key, str):
        if key in node:
            return node[key]
        return next((v for k, v in node.items() if isinstance(k, str) and k.lower() == key.lower()), None)
    return None


def dump_system(system: BaseModel) -> dict[str, Any]:
    """Canonical inferno JSON of a SystemData (or any part of it)."""
    return system.model_dump(mode="json", by_alias=True)
