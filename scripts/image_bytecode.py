"""Compile the bytecode the services load, and only that, into the image's virtualenv.

Run by the Dockerfile's build stage with the image's Python, after the project is installed:
imports every module of the six service packages (so their whole import closure, dependencies
included, is loaded; `__main__` modules, which would start a service, are left out), then writes
a `.pyc` (unchecked hash: valid whatever the files' times) for each loaded module under
site-packages. The root filesystem is read-only at run time, so without these each start would
compile them again in memory; modules no service loads (most of scipy and pandas) get none: a pyc
for them would cost image size and buy nothing. Any import error fails the build.
"""

from __future__ import annotations

import importlib
import pkgutil
import py_compile
import sys
import sysconfig

PACKAGES = ("plumbing", "contract", "optimizer", "collector", "actuator", "controller")


def main() -> int:
    site = sysconfig.get_paths()["purelib"]
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    sources = sorted(
        {
            file
            for module in list(sys.modules.values())
            if (file := getattr(module, "__file__", None)) and file.startswith(site) and file.endswith(".py")
        }
    )
    for source in sources:
        py_compile.compile(
            source, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    print(f"image_bytecode: compiled {len(sources)} modules the services load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
