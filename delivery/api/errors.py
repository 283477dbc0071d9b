"""Every API error as one JSON shape: ``{"error": code, "message": sentence}``, plus
``"fields"`` (one list of messages per field) when the request did not validate."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    """The request is valid but cannot be done: the number opted out, or is suppressed."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, message: str, code: str) -> None:
        super().__init__(detail=message, code=code)


def exception_handler(error: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(error, context)
    if response is None:
        return None  # not an API error: a bug, which must stay a visible 500
    if isinstance(error, exceptions.ValidationError):
        fields = (
            error.detail if isinstance(error.detail, dict) else {"non_field_errors": error.detail}
        )
        response.data = {
            "error": "invalid",
            "message": "The request has errors; see fields.",
            "fields": _messages(fields),
        }
        return response
    # DRF has turned Django's Http404 and PermissionDenied into its own errors by now.
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    code = detail.code if isinstance(detail, exceptions.ErrorDetail) else "error"
    response.data = {"error": code, "message": str(detail)}
    return response


def _messages(detail: Any) -> Any:
    """ErrorDetail trees as plain strings (nested for nested fields)."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(item) for item in detail]
    return str(detail)
