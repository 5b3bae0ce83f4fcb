"""Plumbing shared by the four services (controller, collector, optimizer, actuator).

A sibling of the services, below them: it imports none of them, and each of them may import it.

Small on purpose; each module has one job:

- :mod:`plumbing.entry`: the image's entry point, ``python -m plumbing.entry <service>``.
- :mod:`plumbing.main`: ``run_service``, the one start-up of every service
  (``--help-settings``, settings, logging, run; exit 2 with a message on bad settings).
- :mod:`plumbing.settings`: environment variables -> a pydantic settings model, in one place
  (``load_settings``), plus ``read_secret_file`` and ``settings_table`` (docs).
- :mod:`plumbing.logs`: structlog JSON logging with secrets redacted (``configure_logging``,
  ``register_secret``); the standard library's loggers go through the same redaction.
- :mod:`plumbing.web`: aiohttp server helpers: JSON errors (every error answer, aiohttp's
  own included), body parsing into a pydantic model (400/413/422, depth-limited), bearer-or-loopback
  guard, token bucket with ``Retry-After``, ``serve``.
- :mod:`plumbing.client`: ``ErrorKind`` (transient / permanent / conflict), the one place
  statuses and exceptions are classified, ``UpstreamError``, and ``JsonClient`` (JSON over HTTP
  with per-call timeouts).
- :mod:`plumbing.kube`: the Kubernetes API client (``load_api_client``: in-cluster config, else the
  kubeconfig, else a ``StartupError``) and the one classifier of its errors
  (``classify_api_error``, ``api_error``); imported only by the services that call the API server.
"""
