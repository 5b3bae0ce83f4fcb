"""The Prometheus adapter: :class:`MetricsPort` over prometheus-api-client.

Built by :mod:`collector.__main__` when ``INFERNO_PROMETHEUS_URL`` is set. ``PrometheusConnect`` is
synchronous (requests), so each query runs in ``asyncio.to_thread`` here and only here. Every
query has a timeout and no client-side retries (the next cycle is the retry), so a cycle with
Prometheus down costs at most ``ceil(14 / concurrency) * timeout``.

One method: an instant query (``GET /api/v1/query``) returning the raw ``data.result`` list. Any
failure (refused, timeout, non-200, an answer that is not Prometheus JSON) becomes a
:class:`SourceError`; the message carries the status but not the body, which may be large.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from collector.ports import SourceError

MAX_MESSAGE_CHARS = 200


class PrometheusAdapter:
    def __init__(self, url: str, timeout_s: float, session: requests.Session | None = None) -> None:
        self._client = PrometheusConnect(
            url=url,
            retry=Retry(total=0, raise_on_status=False),
            timeout=timeout_s,
            session=session,
        )

    def _query(self, promql: str) -> list[dict[str, Any]]:
        try:
            result = self._client.custom_query(promql)
        except PrometheusApiClientException as exc:
            raise SourceError(f"Prometheus answered {str(exc)[:MAX_MESSAGE_CHARS]}") from None
        except (requests.exceptions.JSONDecodeError, KeyError, TypeError) as exc:  # not {"data": {"result"}}
            raise SourceError(f"Prometheus answer is not a query result ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise SourceError(f"Prometheus unreachable: {type(exc).__name__}") from None
        except ValueError as exc:
            raise SourceError(f"Prometheus answer is not a query result ({type(exc).__name__})") from None
        if not isinstance(result, list):
            raise SourceError(f"Prometheus answer is not a vector (got {type(result).__name__})")
        return result

    async def query(self, promql: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._query, promql)
