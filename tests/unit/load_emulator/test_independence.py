"""The emulator stays independent of the optimizer's analytic model, and its engine stays pure.

Walks the imports of every module of ``load_emulator`` and its subpackages (with ``ast``): none may import
``optimizer.model`` or ``optimizer.candidates`` (the emulator would then only agree with itself),
and the engine modules may not import I/O libraries (aiohttp, kubernetes, prometheus_client).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import load_emulator

PACKAGE = Path(load_emulator.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
FORBIDDEN_EVERYWHERE = ("optimizer.model", "optimizer.candidates")
ENGINE = ("engine", "server", "replica", "replica_steps", "timing", "stats", "histograms", "patterns",
          "tokens", "trace", "emulated_cluster", "cluster")  # fmt: skip
IO_LIBRARIES = ("aiohttp", "kubernetes", "prometheus_client", "prometheus_api_client", "urllib", "socket")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_never_imports_the_optimizer_model(path: Path) -> None:
    bad = {n for n in _imports(path) if n.startswith(FORBIDDEN_EVERYWHERE)}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("name", ENGINE)
def test_engine_modules_do_no_io(name: str) -> None:
    bad = {n for n in _imports(PACKAGE / f"{name}.py") if n.split(".")[0] in IO_LIBRARIES}
    assert not bad, f"{name}.py imports {sorted(bad)}"
