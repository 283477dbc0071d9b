"""Provider webhooks take a short way through the middleware stack."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

WEBHOOK_PREFIX = "/webhooks/twilio/"
# The JSON API authenticates with its own keys (never a session or a cookie).
API_PREFIX = "/api/"
# Probes: the load balancer's health check and Prometheus' scrape call with whatever Host
# they like (a task's IP, "web"), so they skip the ALLOWED_HOSTS check with the rest.
PROBE_PATHS = frozenset({"/health", "/health/live", "/metrics"})


class WebhookShortcutMiddleware:
    """Serve Twilio's webhooks, the JSON API and the probes (health, metrics) without
    sessions, users, messages, CSRF or login lockout.

    Only the signature opens them, and they are the busiest URLs of the site (a status
    callback per message state), so the rest of the stack is pure cost. Placed right
    after SecurityMiddleware; every other URL takes the whole stack. The API is opened
    by its keys alone (DRF authenticates them), so the stack is pure cost there too.
    (Twilio's status callbacks take a shorter way still when a WSGI server calls
    ``smsadmin.wsgi.application``: ``delivery.status_lane`` answers them before Django.)

    They also skip the database health check (``CONN_HEALTH_CHECKS``: a ``SELECT 1``
    round trip at the start of every request, which cost a third of their throughput).
    Instead, when the kept connection turns out dead (PostgreSQL restarted), the webhook
    is served once more on a new one: webhook handling is idempotent (statuses only move
    forward, inbound texts are recorded once per MessageSid), so Twilio never gets a 500
    for our restart.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # The short way still counts in django-prometheus' by-view metrics (the HTTP error
        # rate alert reads them): its "after" middleware wraps the short way too.
        self._serve_measured = _measured(self._serve_short)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not (path.startswith((WEBHOOK_PREFIX, API_PREFIX)) or path in PROBE_PATHS):
            return self.get_response(request)
        try:
            request.resolver_match = resolve(path)
        except Resolver404:
            return self.get_response(request)
        return self._serve_measured(request)

    def _serve_short(self, request: HttpRequest) -> HttpResponse:
        match = request.resolver_match
        if request.path_info.startswith(WEBHOOK_PREFIX):
            return _serve_webhook(match.func, request, *match.args, **match.kwargs)
        if request.path_info.startswith(API_PREFIX):
            response = _serve_api(match.func, request, *match.args, **match.kwargs)
        else:
            response = match.func(request, *match.args, **match.kwargs)
        # What Django's handler does for a view's template response (DRF's Response).
        if hasattr(response, "render") and callable(response.render):
            response = response.render()
        return response


def _measured(
    serve: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """``serve`` inside django-prometheus' "after" middleware, with its per-view count
    (which Django's handler would have made in ``process_view``)."""
    if "django_prometheus" not in settings.INSTALLED_APPS:
        return serve
    from django_prometheus.middleware import PrometheusAfterMiddleware

    def counted(request: HttpRequest) -> HttpResponse:
        match = request.resolver_match
        after.process_view(request, match.func, match.args, match.kwargs)
        return serve(request)

    after = PrometheusAfterMiddleware(counted)
    return after


def _serve_api(
    view: Callable[..., HttpResponse], request: HttpRequest, *args: object, **kwargs: object
) -> HttpResponse:
    """No health check either; an API call is not always idempotent, so it runs again on a
    new connection only when the connection was lost before any statement or at the
    first, a read (its key's lookup): then nothing of it reached the database. Any other
    database error (a timeout, say) is the request's."""
    connection.health_check_done = True
    arrival = _FirstStatement()
    try:
        with connection.execute_wrapper(arrival):
            return view(request, *args, **kwargs)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block or not arrival.nothing_done or not _connection_lost():
            raise
        connection.close()
        return view(request, *args, **kwargs)


def _connection_lost() -> bool:
    """The database connection is gone (psycopg marks it broken when the server hung up)."""
    raw = connection.connection
    return raw is None or bool(getattr(raw, "broken", False) or getattr(raw, "closed", False))


class _FirstStatement:
    """An execute wrapper that tells whether a failure left the database untouched: no
    statement ran, or the first one, a SELECT, is what failed."""

    def __init__(self) -> None:
        self.statements = 0
        self.first_read_failed = False

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        first = self.statements == 0
        self.statements += 1
        try:
            return execute(sql, params, many, context)
        except (InterfaceError, OperationalError):
            self.first_read_failed = first and sql.lstrip()[:6].upper() == "SELECT"
            raise

    @property
    def nothing_done(self) -> bool:
        return self.statements == 0 or self.first_read_failed


def _serve_webhook(
    view: Callable[..., HttpResponse], request: HttpRequest, *args: object, **kwargs: object
) -> HttpResponse:
    return serve_idempotent(lambda: view(request, *args, **kwargs))


def serve_idempotent(serve: Callable[[], HttpResponse]) -> HttpResponse:
    """``serve()`` without Django's per-request health check of the kept connection; if
    that connection turns out dead, ``serve()`` once more on a new one. Only for work that
    may run twice (a provider's webhook: statuses move forward only, texts are recorded
    once per MessageSid)."""
    # Django resets this flag when a request starts; set, it skips this request's check.
    connection.health_check_done = True
    try:
        return serve()
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        connection.close()
        return serve()
