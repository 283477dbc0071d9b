"""Twilio's status callbacks, answered in front of Django's request handler.

One callback arrives per message and state (accepted, sent, delivered), so a blast of
100,000 messages brings 200,000 to 300,000 of them within minutes: the busiest URL of the
product by far. Each needs a signature check and one UPDATE; Django's handler around that
(request and response objects, the middleware stack, URL resolution) cost more than the
work itself. Measured in process on the benchmark's machine: 0.72 ms of CPU per callback
through Django, 0.36 ms through this lane, 0.28 ms with the prepared UPDATE.

The lane takes only a form POST in UTF-8 to the status URL, which is what Twilio sends;
it answers with :func:`delivery.webhooks.answer_status_callback`, the view's own code,
sends Django's request_started/request_finished (connection upkeep) and counts the request
in django-prometheus' metrics as its middleware would. Anything else (another method,
path or content type, another charset, a non-ASCII query string, a SCRIPT_NAME, a body
over Django's limit, plain HTTP when SECURE_SSL_REDIRECT is on) goes to Django, which
answers as it always does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core import signals
from django.http import HttpResponse
from django.urls import resolve, reverse
from django.utils.encoding import iri_to_uri

from delivery.webhooks import answer_status_callback
from smsadmin.middleware import serve_idempotent

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FORM = "application/x-www-form-urlencoded"
_UTF8_PARAMETERS = frozenset({"", "charset=utf-8", 'charset="utf-8"'})
# Django's handler logs a crash here too, with the same words.
request_logger = logging.getLogger("django.request")


class StatusCallbackLane:
    """A WSGI application: the status callback itself, everything else to ``django``."""

    def __init__(self, django: WSGIApplication) -> None:
        self.django = django
        self.path = reverse("delivery:twilio-status")
        self.metrics = _Metrics(view=resolve(self.path).view_name)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body_length = self._form_length(environ)
        if body_length is None:
            return self.django(environ, start_response)
        started = time.perf_counter()
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            response = self._answer(environ, body_length)
        finally:
            signals.request_finished.send(sender=self.__class__)
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), ("Content-Length", str(len(response.content)))],
        )
        self.metrics.count(
            environ,
            status=response.status_code,
            request_bytes=body_length,
            response_bytes=len(response.content),
            seconds=time.perf_counter() - started,
        )
        return [response.content]

    def _form_length(self, environ: dict[str, Any]) -> int | None:
        """The body length of a form POST to the status URL the lane answers, else None."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return None
        if not environ.get("QUERY_STRING", "").isascii():
            return None
        # Mounted under a prefix, Twilio signs the prefix too: Django knows it.
        if environ.get("SCRIPT_NAME") or settings.FORCE_SCRIPT_NAME:
            return None
        # Plain HTTP where only HTTPS is served: SecurityMiddleware's redirect (or its
        # exemption) is Django's to give.
        if settings.SECURE_SSL_REDIRECT and _transport(environ) != "https":
            return None
        # A form in UTF-8 (Twilio's); any other charset is Django's to decode.
        media_type, _, parameters = environ.get("CONTENT_TYPE", "").lower().partition(";")
        if media_type.strip() != FORM or parameters.strip() not in _UTF8_PARAMETERS:
            return None
        raw_length = environ.get("CONTENT_LENGTH") or "0"
        if not raw_length.isascii() or not raw_length.isdigit():
            return None
        length = int(raw_length)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return None if limit is not None and length > limit else length

    def _answer(self, environ: dict[str, Any], body_length: int) -> HttpResponse:
        try:
            body = environ["wsgi.input"].read(body_length) if body_length else b""
        except OSError:
            # The client went away mid-body (Django: UnreadablePostError).
            return HttpResponse("Unreadable body", status=400, content_type="text/plain")
        try:
            pairs = _form_fields(body)
        except ValueError:
            # What Django answers for more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS.
            return HttpResponse("Too many fields", status=400, content_type="text/plain")
        query = environ.get("QUERY_STRING", "")
        arguments = {
            "values": [value for _, value in pairs],
            "signature": environ.get("HTTP_X_TWILIO_SIGNATURE", ""),
            "full_path": self.path + (f"?{iri_to_uri(query)}" if query else ""),
            "host": environ.get("HTTP_HOST", ""),
        }
        fields = dict(pairs)
        try:
            # As the shortcut serves webhooks: applying a status twice changes nothing.
            return serve_idempotent(lambda: answer_status_callback(fields, **arguments))
        except Exception:
            request_logger.exception(
                "Internal Server Error: %s", self.path, extra={"status_code": 500}
            )
            return HttpResponse("Server error", status=500, content_type="text/plain")


def _form_fields(body: bytes) -> list[tuple[str, str]]:
    """The body's fields as Django's QueryDict reads them (ValueError: too many)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")
    return parse_qsl(
        text, keep_blank_values=True, max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    )


class _Metrics:
    """django-prometheus' request and response metrics, counted as its two middlewares
    count a request to this view; labelled children kept (labelling is the slow part)."""

    def __init__(self, *, view: str) -> None:
        self.view = view
        self.django_metrics: Any = None
        if "django_prometheus" in settings.INSTALLED_APPS:
            from django_prometheus.middleware import Metrics

            # The middleware's own instance (one per process).
            self.django_metrics = Metrics.get_instance()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def count(
        self,
        environ: dict[str, Any],
        *,
        status: int,
        request_bytes: int,
        response_bytes: int,
        seconds: float,
    ) -> None:
        metrics = self.django_metrics
        if metrics is None:
            return
        transport = _transport(environ)
        view, code = self.view, str(status)
        metrics.requests_total.inc()
        metrics.responses_total.inc()
        metrics.requests_latency_before.observe(seconds)
        self._child(metrics.requests_by_method, "POST").inc()
        self._child(metrics.requests_by_transport, transport).inc()
        metrics.requests_body_bytes.observe(request_bytes)
        self._child(metrics.requests_by_view_transport_method, view, transport, "POST").inc()
        self._child(metrics.responses_by_status, code).inc()
        self._child(metrics.responses_by_status_view_method, code, view, "POST").inc()
        self._child(metrics.responses_by_charset, "utf-8").inc()
        metrics.responses_body_bytes.observe(response_bytes)
        self._child(metrics.requests_latency_by_view_method, view, "POST").observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _transport(environ: dict[str, Any]) -> str:
    """``request.is_secure()``: the proxy's header when it is trusted, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = environ.get(header)
        if forwarded is not None:
            return "https" if forwarded.split(",")[0].strip() == secure_value else "http"
    return "https" if environ.get("wsgi.url_scheme") == "https" else "http"
