"""Requests through ``smsadmin.wsgi.application``, the WSGI callable gunicorn serves.

Django's test client calls Django's handler directly, so it never passes what stands in
front of it (``delivery.status_lane``). This client builds the same WSGI environ (with
Django's ``RequestFactory``) and calls the real application, as gunicorn would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

FORM = "application/x-www-form-urlencoded"


@dataclass
class WsgiResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.headers


class WsgiClient:
    """``get`` and ``post`` as Django's test client has them, through the WSGI callable."""

    def __init__(self) -> None:
        from smsadmin.wsgi import application

        self.application = application
        self.factory = RequestFactory()

    def get(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self._call(self.factory.get(path, data, **extra).environ)

    def post(
        self, path: str, data: Any = None, content_type: str = FORM, **extra: Any
    ) -> WsgiResponse:
        """A dict ``data`` is sent as Twilio sends its webhooks: a URL-encoded form."""
        if isinstance(data, dict) and content_type == FORM:
            data = urlencode(data, doseq=True)
        return self._call(self.factory.post(path, data, content_type=content_type, **extra).environ)

    def _call(self, environ: dict[str, Any]) -> WsgiResponse:
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):  # type: ignore[no-untyped-def]
            started.append((status, headers))

        # As Django's client does: a test's connection stays open inside its transaction.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = self.application(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        status, headers = started[-1]
        return WsgiResponse(
            status_code=int(status.split(" ", 1)[0]),
            content=content,
            headers={name.lower(): value for name, value in headers},
        )
