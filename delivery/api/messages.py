"""``/api/v1/messages``: send a text, read one, list them.

A sent text is an ordinary message in the day's API batch of its sender: rate-limited,
checked against opt-outs again when claimed, tracked by status callbacks. The 202 is
answered once its row is committed; a worker picks it up within half a second.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from delivery.api.errors import Conflict
from delivery.api.models import ApiKey, IdempotentRequest
from delivery.api.serializers import (
    ErrorSerializer,
    MessageSerializer,
    SendMessageSerializer,
    ValidationErrorSerializer,
)
from delivery.dispatch import dispatch_trickle
from delivery.models import Batch, Message
from delivery.segments import analyze
from members.models import OptOut, Suppression
from smsadmin.prepared import fetch_prepared, insert_prepared

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# What every operation may answer before it runs: the key is checked, then its scope, rate.
ACCESS_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No valid API key."),
    403: OpenApiResponse(ErrorSerializer, description="The key lacks the scope."),
    429: OpenApiResponse(ErrorSerializer, description="Past the key's rate; see Retry-After."),
}


class MessagePagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Any:
        # DRF answers a bad cursor with 404; it is a bad query parameter, so a 400.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {"cursor": ["Not a cursor from this API; follow the next or previous link."]}
            ) from None


class MessageListCreate(generics.ListAPIView):
    """``POST``: send one text (scope ``send``). ``GET``: list texts (scope ``read``)."""

    serializer_class = MessageSerializer
    pagination_class = MessagePagination

    @property
    def required_scope(self) -> str:
        return ApiKey.Scope.SEND if self.request.method == "POST" else ApiKey.Scope.READ

    def get_queryset(self) -> Any:
        messages = Message.objects.all()
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in Message.Status.values:
                raise exceptions.ValidationError(
                    {"status": [f"Not a status; one of: {', '.join(Message.Status.values)}."]}
                )
            messages = messages.filter(status=wanted)
        since = self.request.query_params.get("since")
        if since:
            messages = messages.filter(created_at__gte=_moment(since))
        return messages

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Message.Status.values),
            OpenApiParameter("since", datetime, description="Created at or after (ISO 8601)."),
        ],
        responses={
            200: MessageSerializer(many=True),
            400: ValidationErrorSerializer,
            **ACCESS_ERRORS,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=SendMessageSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="A retry with the same key returns the first answer and sends "
                "nothing new.",
            )
        ],
        responses={
            202: MessageSerializer,
            400: ValidationErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Opted out or suppressed."),
            422: OpenApiResponse(ErrorSerializer, description="Idempotency key reused."),
            **ACCESS_ERRORS,
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = _idempotency_key(request)
        if not idempotency_key:
            # One INSERT in autocommit: the row is committed when the 202 is written.
            body = self._send(request)
            return Response(
                body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]}
            )
        api_key: ApiKey = request.auth
        with transaction.atomic():
            earlier = _claim_idempotency_key(api_key, idempotency_key, _fingerprint(request))
            if earlier is not None:
                return earlier
            body = self._send(request)
            IdempotentRequest.objects.filter(api_key=api_key, key=idempotency_key).update(
                response_status=status.HTTP_202_ACCEPTED, response_body=body
            )
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    def _send(self, request: Request) -> dict[str, Any]:
        incoming = SendMessageSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        message = queue_message(**incoming.validated_data)
        return MessageSerializer(message, context={"request": request}).data


class MessageDetail(generics.RetrieveAPIView):
    """One text: its status, segments, error and timestamps (scope ``read``)."""

    required_scope = ApiKey.Scope.READ
    serializer_class = MessageSerializer
    queryset = Message.objects.all()

    @extend_schema(responses={200: MessageSerializer, 404: ErrorSerializer, **ACCESS_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def queue_message(
    *,
    to: str,
    body: str,
    sender: str | None = None,
    send_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Create the message in its sender's API batch of the day and have it sent after
    commit. Raises :class:`Conflict` for a number we must not text."""
    block = _block_on(to)
    if block == "opted_out":
        raise Conflict(f"{to} has opted out: it can be texted only after it texts START.", block)
    if block == "suppressed":
        raise Conflict(f"{to} is suppressed: messages to it keep failing.", block)
    sender = sender or settings.SMS_DEFAULT_SENDER
    now = timezone.now()
    shape = analyze(body)
    batch_id = _batch_of_the_day(sender, now)
    send_after = send_at if send_at is not None and send_at > now else None
    message = Message(
        batch_id=batch_id,
        kind=Batch.Kind.API,
        phone=to,
        sender=sender,
        body=body,
        encoding=shape.encoding,
        segments=shape.segments,
        send_after=send_after,
        metadata=metadata,
        created_at=now,
        status_updated_at=now,
    )
    # One prepared INSERT: the ORM's compiler cost a quarter of the request.
    insert_prepared(message)
    dispatch_trickle(batch_id=batch_id, send_at=send_after)
    return message


def _block_on(phone: str) -> str | None:
    """``opted_out``, ``suppressed`` or None, in one small query (both partial indexes)."""
    ((opted_out, suppressed),) = fetch_prepared(_BLOCK_SQL, [phone, phone])
    return "opted_out" if opted_out else "suppressed" if suppressed else None


_BLOCK_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {OptOut._meta.db_table} "  # noqa: S608 - our own table names
    "WHERE phone = %s AND lifted_at IS NULL), "
    f"EXISTS (SELECT 1 FROM {Suppression._meta.db_table} WHERE phone = %s AND lifted_at IS NULL)"
)


# Batches are never deleted (messages protect them), so a process may remember the id of
# each sender's batch of the day instead of looking it up on every request.
_batch_ids: dict[tuple[str, str], int] = {}


def _batch_of_the_day(sender: str, now: datetime) -> int:
    label = f"API {now:%Y-%m-%d} from {sender}"
    known = _batch_ids.get((sender, label))
    if known is not None:
        return known
    batch = Batch.objects.filter(kind=Batch.Kind.API, label=label, sender=sender).first()
    # Two first requests of a day may each create one: harmless, the batch only groups.
    batch = batch or Batch.objects.create(kind=Batch.Kind.API, label=label, sender=sender)
    if len(_batch_ids) > 1_000:
        _batch_ids.clear()
    _batch_ids[(sender, label)] = batch.pk
    return batch.pk


def _idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
        raise exceptions.ValidationError(
            {IDEMPOTENCY_HEADER: [f"At most {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters."]}
        )
    return key.strip()


def _fingerprint(request: Request) -> str:
    try:
        canonical = json.dumps(request.data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        canonical = repr(request.data)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _claim_idempotency_key(api_key: ApiKey, key: str, fingerprint: str) -> Response | None:
    """None when this request is the first with ``key`` (it now holds the key until its
    transaction ends); else the first request's answer.

    A concurrent retry waits on the unique index until the first request commits (then it
    gets the stored answer) or rolls back (then it goes ahead itself).
    """
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(
                api_key=api_key,
                key=key,
                fingerprint=fingerprint,
                response_status=0,
                response_body={},
            )
        return None
    except IntegrityError:
        earlier = IdempotentRequest.objects.get(api_key=api_key, key=key)
    if earlier.fingerprint != fingerprint:
        return Response(
            {
                "error": "idempotency_key_reused",
                "message": f"This {IDEMPOTENCY_HEADER} was used for a different request.",
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(
        earlier.response_body,
        status=earlier.response_status,
        headers={"Idempotent-Replayed": "true", "Location": earlier.response_body.get("url", "")},
    )


def _moment(text: str) -> datetime:
    try:
        return serializers.DateTimeField().run_validation(text)
    except serializers.ValidationError:
        raise exceptions.ValidationError(
            {"since": ["A date and time in ISO 8601, e.g. 2026-12-01T08:00:00Z."]}
        ) from None
