"""One start-up sequence for the four services: ``--help-settings``, settings, logging, run.

Each service's ``main`` is a single call::

    def main(argv: list[str] | None = None) -> int:
        return run_service("actuator", ActuatorSettings, ENV_PREFIX, _run, argv)

``run_service`` then

1. prints the settings table and returns 0 for ``--help-settings``;
2. reads the settings from the environment (:func:`plumbing.settings.load_settings`); a bad
   value prints one line naming the variable and returns 2, before any log line or socket;
3. configures structlog JSON logging with secret redaction (:mod:`plumbing.logs`) at the
   settings' ``log_level``;
4. freezes what start-up created and makes young garbage collections rarer
   (:mod:`plumbing.gc_tuning`: a cycle's short-lived objects are freed by reference counting,
   so frequent collections cost CPU and find little);
5. runs ``serve(settings)`` until SIGTERM/SIGINT; a :class:`StartupError` it raises (no kube config,
   unusable token file...) is logged as ``startup_failed`` and returns 2, never a trace.

``python -m plumbing.entry <service>`` (the image's entry point) calls these ``main`` functions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from plumbing.gc_tuning import tune_gc
from plumbing.logs import configure_logging
from plumbing.settings import SettingsError, load_settings, settings_table

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class StartupError(Exception):
    """The service cannot start; the message says why and what to fix."""


def run_service(
    name: str,
    model: type[SettingsT],
    prefix: str,
    serve: Callable[[SettingsT], Coroutine[Any, Any, None]],
    argv: list[str] | None = None,
) -> int:
    """Parse ``argv``, load ``model`` from ``prefix``-ed variables, log as ``name``, await ``serve``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m plumbing.entry {name}",
        description=f"the inferno autoscaler's {name}; settings come from environment variables",
    )
    parser.add_argument(
        "--help-settings", action="store_true", help="print the environment variables, defaults, meanings"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.help_settings:
        print(settings_table(model, prefix))
        return 0
    try:
        settings = load_settings(model, prefix)
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(name, str(getattr(settings, "log_level", "INFO")))
    tune_gc()
    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        structlog.get_logger().error("startup_failed", error=str(exc))
        return 2
    return 0
