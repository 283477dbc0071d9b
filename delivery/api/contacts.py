"""``/api/v1/contacts``: add or update contacts (members) by phone, one or in bulk.

The rules are the CSV import's: a contact is found by its phone in E.164; a value given
overwrites, a value left out, null or blank leaves the stored one as is (the API never
erases); merge fields are merged. A new contact joins the community pool unless it is
registered for an event or ``community`` says otherwise. Opted-out or suppressed phones
are updated like any other and stay opted out or suppressed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery.api.contacts_rows import (
    EVENT_SLUG_MAX_LENGTH,
    ContactInput,
    read_bulk_request,
    reported_phone,
    validate_contact,
)
from delivery.api.models import ApiKey
from delivery.api.serializers import ErrorSerializer, ValidationErrorSerializer
from members.contacts import ContactChanges, upsert_contacts
from members.models import Event, Member

BULK_MAX_CONTACTS = 10_000
UNKNOWN_EVENT = "No event with this slug."


# These request serializers describe the schema; ``contacts_rows`` validates (fast
# enough for a bulk request), and a test keeps the two on the same fields.
class ContactUpsertSerializer(serializers.Serializer):
    """A contact, found by its phone. A field left out, null or blank leaves the stored
    value as is; unknown fields are refused."""

    phone = serializers.CharField(max_length=64, help_text="E.164 or national format.")
    first_name = serializers.CharField(required=False, allow_null=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_null=True, max_length=100)
    email = serializers.EmailField(required=False, allow_null=True)
    timezone = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="IANA time zone, e.g. America/New_York; left out: from the number.",
    )
    community = serializers.BooleanField(
        required=False, allow_null=True, help_text="In the community pool."
    )
    daily = serializers.BooleanField(
        required=False, allow_null=True, help_text="Subscribed to the daily message."
    )
    fields = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_null=True),
        required=False,
        allow_null=True,
        help_text="Merge fields, merged into the stored ones (at most 100; names are "
        "written like CSV columns: 'Favourite Colour' is favourite_colour).",
    )
    event = serializers.SlugField(
        required=False,
        allow_null=True,
        max_length=EVENT_SLUG_MAX_LENGTH,
        help_text="Register the contact for this existing event.",
    )


class ContactBulkUpsertSerializer(serializers.Serializer):
    contacts = ContactUpsertSerializer(
        many=True,
        max_length=BULK_MAX_CONTACTS,
        help_text=f"At most {BULK_MAX_CONTACTS:,}. When a phone appears more than once, "
        "its last valid contact wins and the earlier ones are ignored.",
    )
    event = serializers.SlugField(
        required=False,
        allow_null=True,
        max_length=EVENT_SLUG_MAX_LENGTH,
        help_text="Register every contact for this existing event (besides its own).",
    )


class ContactSerializer(serializers.ModelSerializer):
    community = serializers.BooleanField(source="is_community", read_only=True)
    daily = serializers.BooleanField(source="is_daily_subscriber", read_only=True)
    number_timezones = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The time zones of the phone number.",
    )
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), read_only=True, help_text="Merge fields."
    )
    events = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Member
        fields = (
            "id",
            "phone",
            "first_name",
            "last_name",
            "email",
            "timezone",
            "number_timezones",
            "community",
            "daily",
            "fields",
            "events",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class RejectedContactSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Its position in contacts, from 0.")
    phone = serializers.CharField(allow_null=True, help_text="The phone as sent.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class ContactBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    duplicates = serializers.IntegerField(
        help_text="Valid contacts left out because a later one has the same phone."
    )
    rejected = serializers.IntegerField()
    errors = RejectedContactSerializer(many=True)


ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No key, or not a valid one."),
    403: OpenApiResponse(ErrorSerializer, description="The key lacks the contacts scope."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests for this key."),
}


class ContactUpsert(APIView):
    required_scope = ApiKey.Scope.CONTACTS

    @extend_schema(
        request=ContactUpsertSerializer,
        responses={
            200: OpenApiResponse(ContactSerializer, description="Updated."),
            201: OpenApiResponse(ContactSerializer, description="Created."),
            400: ValidationErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """Add a contact, or update the one with this phone."""
        contact, errors = validate_contact(request.data, region=settings.DEFAULT_PHONE_REGION)
        events = _events_by_slug([contact.event_slug] if contact and contact.event_slug else [])
        if contact is not None and contact.event_slug and contact.event_slug not in events:
            errors = {"event": [UNKNOWN_EVENT]}
        if errors or contact is None:
            raise exceptions.ValidationError(errors)
        written = upsert_contacts(contacts=[_changes(contact, events)])
        member = Member.objects.prefetch_related("events").get(pk=written.members[contact.phone].pk)
        return Response(
            ContactSerializer(member).data,
            status=status.HTTP_201_CREATED if written.created else status.HTTP_200_OK,
        )


class ContactBulkUpsert(APIView):
    required_scope = ApiKey.Scope.CONTACTS

    @extend_schema(
        request=ContactBulkUpsertSerializer,
        responses={
            200: OpenApiResponse(
                ContactBulkResultSerializer,
                description="The valid contacts were written, the others are in errors.",
            ),
            400: OpenApiResponse(
                ValidationErrorSerializer,
                description="Not a list of contacts, too many, or an unknown event.",
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """Add or update many contacts; one bad contact never holds back the good ones.

        When a phone appears more than once, its last valid contact wins (the earlier
        ones are ignored, counted in ``duplicates``) and the phone counts once.
        """
        rows, shared_slug = read_bulk_request(request.data, max_contacts=BULK_MAX_CONTACTS)
        region = settings.DEFAULT_PHONE_REGION
        validated = [validate_contact(row, region=region) for row in rows]
        slugs = {contact.event_slug for contact, _ in validated if contact and contact.event_slug}
        events = _events_by_slug([*slugs, shared_slug] if shared_slug else list(slugs))
        if shared_slug and shared_slug not in events:
            raise exceptions.ValidationError({"event": [UNKNOWN_EVENT]})
        changes: list[ContactChanges] = []
        rejected: list[dict[str, Any]] = []
        for index, (contact, errors) in enumerate(validated):
            if contact is not None and contact.event_slug and contact.event_slug not in events:
                contact, errors = None, {"event": [UNKNOWN_EVENT]}
            if contact is None:
                rejected.append(
                    {"index": index, "phone": reported_phone(rows[index]), "fields": errors}
                )
                continue
            changes.append(_changes(contact, events, shared_slug=shared_slug))
        written = upsert_contacts(contacts=changes)
        result = {
            "created": written.created,
            "updated": written.updated,
            "duplicates": len(changes) - len(written.members),
            "rejected": len(rejected),
            "errors": rejected,
        }
        return Response(result, status=status.HTTP_200_OK)


def _events_by_slug(slugs: list[str]) -> dict[str, Event]:
    if not slugs:
        return {}
    return {event.slug: event for event in Event.objects.filter(slug__in=slugs)}


def _changes(
    contact: ContactInput, events: dict[str, Event], *, shared_slug: str | None = None
) -> ContactChanges:
    slugs = {slug for slug in (contact.event_slug, shared_slug) if slug}
    return ContactChanges(
        phone=contact.phone,
        number_timezones=contact.number_timezones,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        timezone=contact.timezone,
        is_community=contact.is_community,
        is_daily_subscriber=contact.is_daily_subscriber,
        fields=contact.fields,
        event_ids=frozenset(events[slug].pk for slug in slugs),
    )
