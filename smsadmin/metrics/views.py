"""``GET /metrics``: Prometheus' text format, for the addresses and the token allowed.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) the answer adds up what every
process wrote there (this web server's workers, the Celery workers); otherwise it is this
process's own registry. Either way the database metrics are read once, here.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from smsadmin.metrics.collectors import DatabaseCollector


@functools.cache
def metrics_registry() -> CollectorRegistry:
    """The registry /metrics exposes, made once per process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry(auto_describe=True)
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    registry.register(DatabaseCollector())
    return registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read the metrics: a right bearer token, or no token from
    an allowed address. A wrong token is refused even from an allowed address."""
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        expected = settings.METRICS_TOKEN
        if (
            scheme.lower() == "bearer"
            and expected
            and hmac.compare_digest(token.strip().encode(), expected.encode())
        ):
            return None
        response = HttpResponse("Wrong metrics token", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _is_allowed_address(_client_address(request)):
        return None
    return HttpResponse("Forbidden", status=403, content_type="text/plain")


def _client_address(request: HttpRequest) -> str:
    # Behind N trusted proxies, the client is the Nth address from the right of
    # X-Forwarded-For; the local nginx itself would otherwise look like 127.0.0.1.
    proxies = settings.METRICS_TRUSTED_PROXY_COUNT
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def _is_allowed_address(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
        client = client.ipv4_mapped
    return any(client in network for network in _allowed_networks())


@functools.cache
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _networks(tuple(settings.METRICS_ALLOWED_IPS))
