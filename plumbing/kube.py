"""The Kubernetes API client, loaded in one place, and its errors classified in one place.

Used by the collector (:mod:`collector.kube_adapter`, :mod:`collector.app`), the actuator
(:mod:`actuator.kube`, :mod:`actuator.__main__`) and the controller's leader election
(:mod:`controller.leader_kube`). The optimizer never imports this module, so the kubernetes
client is loaded only into the services that call the API server.

- :func:`load_api_client`: in-cluster config when running in a pod, else the kubeconfig; a
  :class:`plumbing.main.StartupError` naming both when neither loads.
- :func:`classify_api_error`: an API call's exception as an :class:`ErrorKind`: an
  ``ApiException`` by its HTTP status (:func:`plumbing.client.classify_status`), or transient
  when no answer came; urllib3's errors (refused, reset, timed out: the API server may be
  restarting) transient; anything else as :func:`plumbing.client.classify_exception` says.
- :func:`api_status`, :func:`api_error` and :func:`describe_api_error` for handlers that react to
  a status (404, 409), raise an :class:`UpstreamError` or name the failure in a message.
"""

from __future__ import annotations

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from plumbing.client import ErrorKind, UpstreamError, classify_exception, classify_status
from plumbing.main import StartupError


def load_api_client(
    connection_pool_size: int | None = None, config_file: str | None = None
) -> client.ApiClient:
    """An ``ApiClient`` from the in-cluster service account, else from the kubeconfig
    (``config_file``, or ``$KUBECONFIG`` / ``~/.kube/config`` when None).

    ``connection_pool_size``: keep-alive connections to the API server (None: the client's
    default, ``5 x cpu_count``); a request beyond it opens a connection, and a TLS handshake, of
    its own. Raises :class:`StartupError` when neither configuration loads.
    """
    # config's functions are looked up at call time, so the unit tests' refusal patch applies.
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException as in_cluster:
        try:
            config.load_kube_config(config_file=config_file)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise StartupError(
                f"no Kubernetes configuration: not in a pod ({in_cluster}) and no usable kubeconfig "
                f"({type(exc).__name__}: {exc}); run in a pod with a ServiceAccount or set KUBECONFIG"
            ) from None
    configuration = client.Configuration.get_default_copy()
    if connection_pool_size is not None:
        configuration.connection_pool_maxsize = connection_pool_size
    return client.ApiClient(configuration)


def api_status(exc: BaseException) -> int | None:
    """The API server's HTTP status in an ``ApiException``; None for other exceptions and for an
    ``ApiException`` without an answer (status 0 or unset)."""
    if isinstance(exc, ApiException):
        return int(exc.status or 0) or None
    return None


def classify_api_error(exc: BaseException) -> ErrorKind:
    """Transient, permanent or conflict: 409 conflict; 408, 425, 429, 5xx, no answer and urllib3's
    connection errors transient; other 4xx permanent; other exceptions as ``classify_exception``."""
    if isinstance(exc, ApiException):
        status = api_status(exc)
        return classify_status(status) if status else ErrorKind.TRANSIENT
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return ErrorKind.TRANSIENT
    return classify_exception(exc)


def api_error(exc: BaseException, what: str) -> UpstreamError:
    """The ``UpstreamError`` of the failed API call ``what``: its kind, the API server's reason and
    status for an ``ApiException``, else the exception's type and text."""
    if isinstance(exc, ApiException):
        return UpstreamError(classify_api_error(exc), f"{what}: {exc.reason}", api_status(exc))
    return UpstreamError(classify_api_error(exc), f"{what}: {type(exc).__name__}: {exc}")


def describe_api_error(exc: BaseException) -> str:
    """A failed API call's exception in a few words: ``403 Forbidden`` for an ``ApiException``
    (status and reason), else its type and text (``MaxRetryError: ...``)."""
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
