"""Plumbing shared by the four services (controller, collector, optimizer, actuator).

Small on purpose; each module has one job:

- :mod:`controller.common.settings`: environment variables -> a pydantic settings model, in one place
  (``load_settings``), plus ``read_secret_file`` and ``settings_table`` (docs).
- :mod:`controller.common.logs`: structlog JSON logging with secrets redacted (``configure_logging``).
- :mod:`controller.common.web`: aiohttp server helpers: JSON errors, body parsing into a pydantic
  model (400/422), bearer-or-loopback guard, token bucket, ``serve``.
- :mod:`controller.common.client`: ``ErrorKind`` (transient / permanent / conflict), the one place
  statuses and exceptions are classified, ``UpstreamError``, and ``JsonClient`` (JSON over HTTP
  with per-call timeouts).
"""
