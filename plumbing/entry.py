"""The image's entry point: ``python -m plumbing.entry collector|optimizer|actuator|controller``.

Each service's ``main()`` is imported lazily, so a container loads only its own dependencies (the
controller never imports the solver, the optimizer never imports the kubernetes client). The
service may also come from ``INFERNO_SERVICE``. Arguments after the name go to the service.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import cast

SERVICES: dict[str, tuple[str, str]] = {
    "collector": ("collector.__main__", "main"),
    "optimizer": ("optimizer.__main__", "main"),
    "actuator": ("actuator.__main__", "main"),
    "controller": ("controller.__main__", "main"),
}
USAGE = f"usage: python -m plumbing.entry {{{'|'.join(SERVICES)}}} [args...] (or set INFERNO_SERVICE)"


def resolve(name: str) -> Callable[[], object]:
    """The ``main`` of service ``name``; ValueError for an unknown name."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {sorted(SERVICES)}")
    module_name, attr = SERVICES[name]
    return cast(Callable[[], object], getattr(importlib.import_module(module_name), attr))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = args.pop(0) if args and not args[0].startswith("-") else os.environ.get("INFERNO_SERVICE", "")
    if not name or name in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        service_main = resolve(name)
    except ValueError as exc:
        print(f"{exc}\n{USAGE}", file=sys.stderr)
        return 2
    sys.argv = [f"inferno-{name}", *args]
    result = service_main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
