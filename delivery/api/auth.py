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
        try:
            api_key = ApiKey.objects.get_from_key(key.strip())
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(
                "This API key is not valid or was revoked."
            ) from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        _note_use(api_key)
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Api-Key realm="api"'


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
            pipeline = _redis().pipeline()
            pipeline.incr(counter)
            pipeline.expire(counter, 120)
            count, _ = pipeline.execute()
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
