"""Provider webhooks take a short way through the middleware stack."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

WEBHOOK_PREFIX = "/webhooks/twilio/"


class WebhookShortcutMiddleware:
    """Serve Twilio's webhooks without sessions, users, messages, CSRF or login lockout.

    Only the signature opens them, and they are the busiest URLs of the site (a status
    callback per message state), so the rest of the stack is pure cost. Placed right
    after SecurityMiddleware; every other URL takes the whole stack.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(WEBHOOK_PREFIX):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                return self.get_response(request)
            return match.func(request, *match.args, **match.kwargs)
        return self.get_response(request)
