"""The layers, checked by walking every import with ``ast`` (as kopf does with import-linter).

Rules, over every ``.py`` file of the top-level packages (imports inside functions and under
``TYPE_CHECKING`` count, relative imports are resolved, ``import a.b`` and ``from a import b`` alike):

- ``plumbing``, ``contract`` and ``calibration`` import no service package and not
  ``load_emulator``; ``contract`` imports no ``plumbing`` either, and no aiohttp, kubernetes or
  prometheus_api_client; ``calibration`` (pure math) imports only ``contract`` and numpy;
- the optimizer core (all of ``optimizer/`` but its service modules ``app.py`` and ``__main__.py``)
  imports no aiohttp, kubernetes, prometheus_api_client, nor ``plumbing``;
- a service package never imports another one: services reach each other through ``contract``;
- ``load_emulator`` imports nothing of ``optimizer`` but the entry points its what-if driver runs
  in-process (:data:`EMULATOR_RUNS_IN_PROCESS`), so it never agrees with the model only because
  it uses it;
- ``advisor`` (the profile and recommend tool) does its I/O around the optimizer's pure cores and
  reads Nodes through the collector's adapter; it imports no controller, actuator nor
  ``load_emulator`` (the profiler measures any endpoint, the emulator is one of them);
- importing every module of a package in a fresh interpreter loads no other service package.

A failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("controller", "collector", "optimizer", "actuator")
PACKAGES = ("plumbing", "contract", "calibration", *SERVICES, "load_emulator", "advisor")
IO_LIBRARIES = ("aiohttp", "kubernetes", "prometheus_api_client")
OPTIMIZER_SERVICE_MODULES = ("optimizer/app.py", "optimizer/__main__.py")
EMULATOR_RUNS_IN_PROCESS = ("optimizer.optimize", "optimizer.settings")


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository, with forward slashes
    line: int
    name: str  # absolute dotted name: the module, or module.attribute for ``from m import a``

    @property
    def top(self) -> str:
        return self.name.split(".")[0]

    def under(self, prefixes: tuple[str, ...]) -> bool:
        return any(self.name == p or self.name.startswith(p + ".") for p in prefixes)


def _imports(path: Path) -> Iterator[Import]:
    rel = path.relative_to(REPO).as_posix()
    package = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                yield Import(rel, node.lineno, f"{module}.{alias.name}")


def _all_imports() -> list[Import]:
    return [imp for pkg in PACKAGES for path in sorted((REPO / pkg).rglob("*.py")) for imp in _imports(path)]


def _rule_broken(imp: Import) -> str | None:
    """Which rule ``imp`` breaks, or None."""
    owner = imp.file.split("/")[0]
    if owner in ("plumbing", "contract", "calibration") and imp.top in (*SERVICES, "load_emulator"):
        return f"{owner} imports no service package"
    if owner == "calibration" and imp.top in ("plumbing", *IO_LIBRARIES):
        return "calibration is pure: no plumbing and no I/O library"
    if owner == "contract" and imp.top in ("plumbing", *IO_LIBRARIES):
        return "contract imports no plumbing and no I/O library"
    if (
        owner == "optimizer"
        and imp.file not in OPTIMIZER_SERVICE_MODULES
        and imp.top in ("plumbing", *IO_LIBRARIES)
    ):
        return "the optimizer core imports no plumbing and no I/O library"
    if owner in SERVICES and imp.top in SERVICES and imp.top != owner:
        return "a service imports no other service (only contract)"
    if owner == "load_emulator" and imp.top == "optimizer" and not imp.under(EMULATOR_RUNS_IN_PROCESS):
        return "load_emulator imports nothing of the optimizer but its in-process entry points"
    if owner == "advisor" and imp.top in ("controller", "actuator", "load_emulator"):
        return "advisor imports no controller, actuator nor load_emulator"
    if owner in (*SERVICES, "plumbing", "contract", "calibration", "load_emulator") and imp.top == "advisor":
        return "nothing below the advisor imports it"
    return None


def test_every_package_is_walked() -> None:
    imports = _all_imports()
    assert {imp.file.split("/")[0] for imp in imports} == set(PACKAGES)
    assert any(
        imp.name == "optimizer.optimize.optimize" for imp in imports if imp.file.startswith("load_emulator/")
    )


def test_imports_respect_the_layers() -> None:
    broken = [(imp, rule) for imp in _all_imports() if (rule := _rule_broken(imp))]
    lines = [f"{imp.file}:{imp.line}: {imp.name} ({rule})" for imp, rule in broken]
    assert not lines, "imports across layers:\n" + "\n".join(lines)


_LOADED = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("package", ("plumbing", "contract", "calibration", *SERVICES))
def test_importing_a_package_loads_no_other_service(package: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, package],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    others = (set(SERVICES) | {"load_emulator"}) - {package}
    loaded = others & set(json.loads(proc.stdout))
    assert loaded == set(), f"importing every module of {package} loads {sorted(loaded)}"
