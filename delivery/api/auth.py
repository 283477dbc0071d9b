"""Who is calling the API and what they may do: API keys, scopes and a rate per key."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from delivery.api.models import ApiKey
from smsadmin.prepared import fetch_prepared_instances

logger = logging.getLogger(__name__)
KEYWORDS = ("api-key", "bearer")
# ``last_used_at`` is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <key>`` (or ``Bearer <key>``); nothing else opens the API."""

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword.lower() not in KEYWORDS or not key.strip():
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Api-Key <key>'.")
        api_key = usable_key(key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid or was revoked.")
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        _note_use(api_key)
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Api-Key realm="api"'


def usable_key(key: str) -> ApiKey | None:
    """The unrevoked key ``key`` is (its hash checked), else None.

    ``ApiKey.objects.get_from_key`` with one prepared SELECT instead of the ORM's: it
    runs on every API request.
    """
    prefix, _, _ = key.partition(".")
    found = fetch_prepared_instances(ApiKey, "prefix = %s AND NOT revoked", [prefix])
    return found[0] if found and found[0].is_valid(key) else None


def _note_use(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


class HasScope(BasePermission):
    """The key must hold the view's ``required_scope`` (a view without one is closed)."""

    message = "This API key may not do that."

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required.")
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return False
        if not api_key.allows(scope):
            self.message = f"This API key lacks the '{scope}' scope."
            return False
        return True


class KeyRateThrottle(BaseThrottle):
    """At most the key's ``rate_limit_per_minute`` requests in each clock minute, counted
    in Redis so that every web worker shares one count. Without Redis (the demo on the
    filesystem broker) nothing is counted."""

    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey) or settings.CELERY_BROKER_URL.startswith("filesystem"):
            return True
        now = time.time()
        minute = int(now // 60)
        counter = f"smsadmin:api-rate:{api_key.prefix}:{minute}"
        try:
            client = _redis()
            count = int(_count_request()(keys=[counter], args=[120], client=client))
        except redis.RedisError as error:
            logger.warning("API rate limit not checked, Redis failed: %s", error)
            return True
        if count <= api_key.rate_limit_per_minute:
            return True
        self._wait = (minute + 1) * 60 - now
        return False

    def wait(self) -> float:
        return max(1.0, self._wait)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


# One round trip, and no counter left without its expiry: INCR, EXPIRE on the first.
_COUNT_REQUEST = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@cache
def _count_request() -> Any:
    """The script (its SHA cached; each call names the client, which tests may swap)."""
    return _redis().register_script(_COUNT_REQUEST)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the schema describes the key: the Authorization header, ``Api-Key <key>``."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as shown once when an Admin created the key.",
        }
