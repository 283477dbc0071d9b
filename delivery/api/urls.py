"""The API's routes under ``/api/v1/``: versioned paths, the schema and its docs."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from delivery.api.contacts import ContactBulkUpsert, ContactUpsert
from delivery.api.messages import MessageDetail, MessageListCreate

PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under the API (``/messages/abc`` too) is a JSON 404, not a page."""
    return JsonResponse(
        {"error": "not_found", "message": f"No API resource at {request.path}."}, status=404
    )


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(**PUBLIC), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", **PUBLIC), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema", **PUBLIC), name="api-redoc"),
    path("messages", MessageListCreate.as_view(), name="api-messages"),
    path("messages/<int:pk>", MessageDetail.as_view(), name="api-message"),
    path("contacts", ContactUpsert.as_view(), name="api-contacts"),
    path("contacts/bulk", ContactBulkUpsert.as_view(), name="api-contacts-bulk"),
    re_path(r"^(?P<path>.*)$", not_found),
]
