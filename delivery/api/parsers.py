"""The API's one way of reading a body: JSON, and bounded.

Anything else is a 400 (or a 413 for a body too large) with the error shape of every API
error, never a 500: JSON nested too deep for Python's parser is one. Text PostgreSQL
cannot store (NUL characters, unpaired surrogates) is refused field by field by the
serializers, with :func:`unstorable_text`, so the answer names the field.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.API_MAX_BODY_BYTES
        length = _content_length(request)
        if length is not None and length > limit:
            raise BodyTooLarge(f"The body is larger than {limit:,} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"The body is larger than {limit:,} bytes.")
        try:
            data = json.loads(raw.decode(settings.DEFAULT_CHARSET))
        except (UnicodeDecodeError, ValueError) as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        return data


def _content_length(request: Any) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else None
    except (TypeError, ValueError):
        return None


def unstorable_text(data: Any) -> str | None:
    """Why some string in ``data`` (a key or a value) cannot be stored, or None."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return "Text may not contain NUL characters (\\u0000)."
            try:
                value.encode()
            except UnicodeEncodeError:
                return "Text may not contain unpaired surrogates (such as \\ud800)."
    return None
