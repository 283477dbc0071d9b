"""``POST /api/v1/contacts`` and ``/contacts/bulk``: contacts upserted by the import's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from delivery.api.contacts import ContactBulkUpsertSerializer, ContactUpsertSerializer
from delivery.api.contacts_rows import CONTACT_FIELDS
from delivery.api.models import ApiKey
from members import contacts as contacts_service
from members.models import EventRegistration, Member, OptOut
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    us_mobile,
)

PHONE = "+14155552671"
OTHER_PHONE = "+14155552672"
THIRD_PHONE = "+14155552673"
CREATED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def client_with(*scopes: str) -> APIClient:
    _, key = ApiKey.objects.create_key(name="CRM", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api() -> APIClient:
    return client_with(ApiKey.Scope.CONTACTS)


def post(client: APIClient, name: str, body: object):
    return client.post(reverse(name), data=json.dumps(body), content_type="application/json")


def upsert(client: APIClient, body: object):
    return post(client, "api-contacts", body)


def bulk(client: APIClient, body: object):
    return post(client, "api-contacts-bulk", body)


def counts() -> tuple[int, int, int]:
    return Member.objects.count(), EventRegistration.objects.count(), OptOut.objects.count()


def stored(phone: str = PHONE) -> dict:
    return Member.objects.values(
        "first_name",
        "last_name",
        "email",
        "timezone",
        "fields",
        "is_community",
        "is_daily_subscriber",
        "updated_at",
    ).get(phone=phone)


@pytest.fixture
def ada() -> Member:
    return MemberFactory(
        phone=PHONE,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.org",
        timezone="Europe/London",
        fields={"team": "engines", "city": "London"},
        is_community=False,
        is_daily_subscriber=True,
        created_at=CREATED_AT,
        updated_at=CREATED_AT,
    )


# --- One contact ------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_new_phone_creates_a_contact_and_answers_201_with_it(api):
    EventFactory(slug="picnic")

    response = upsert(
        api,
        {
            "phone": "(415) 555-2671",
            "first_name": " Grace ",
            "last_name": "Hopper",
            "email": "grace@example.org",
            "timezone": "America/New_York",
            "daily": True,
            "fields": {"Favourite Colour": "teal", "team": "navy"},
            "event": "picnic",
        },
    )

    assert response.status_code == 201
    member = Member.objects.get()
    assert response.json() == {
        "id": member.pk,
        "phone": PHONE,
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.org",
        "timezone": "America/New_York",
        "number_timezones": ["America/Los_Angeles"],
        "community": False,  # registered for an event, like an import for one
        "daily": True,
        "fields": {"favourite_colour": "teal", "team": "navy"},
        "events": ["picnic"],
        "created_at": "2026-12-01T08:00:00Z",
        "updated_at": "2026-12-01T08:00:00Z",
    }
    assert counts() == (1, 1, 0)


def test_a_new_contact_without_an_event_joins_the_community_pool(api):
    response = upsert(api, {"phone": PHONE})

    assert response.status_code == 201
    assert response.json()["community"] is True
    assert response.json()["daily"] is False
    assert counts() == (1, 0, 0)


@time_machine.travel(NOW, tick=False)
def test_a_known_phone_updates_the_contact_and_answers_200(api, ada):
    response = upsert(
        api,
        {
            "phone": "+1 415 555 2671",
            "first_name": "Augusta",
            "email": "augusta@example.org",
            "community": True,
            "daily": False,
            "fields": {"city": "Marylebone"},
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ada.pk
    assert body["created_at"] == "2026-11-02T09:00:00Z"
    assert stored() == {
        "first_name": "Augusta",
        "last_name": "Lovelace",
        "email": "augusta@example.org",
        "timezone": "Europe/London",
        "fields": {"team": "engines", "city": "Marylebone"},
        "is_community": True,
        "is_daily_subscriber": False,
        "updated_at": NOW,
    }
    assert counts() == (1, 0, 0)


@time_machine.travel(NOW, tick=False)
def test_fields_left_out_null_or_blank_leave_the_stored_values_as_is(api, ada):
    before = stored()

    response = upsert(
        api,
        {"phone": PHONE, "first_name": "", "last_name": None, "email": "  ", "fields": {}},
    )

    assert response.status_code == 200
    assert stored() == before  # nothing changed, so not even updated_at
    assert before["updated_at"] == CREATED_AT


def test_an_update_registers_for_the_event_and_keeps_the_community_flag(api, ada):
    EventRegistrationFactory(member=ada, event__slug="gala")
    EventFactory(slug="picnic")

    response = upsert(api, {"phone": PHONE, "event": "picnic"})

    assert response.status_code == 200
    assert sorted(response.json()["events"]) == ["gala", "picnic"]
    assert stored()["is_community"] is False
    assert counts() == (1, 2, 0)


def test_registering_again_for_the_same_event_adds_no_registration(api, ada):
    EventRegistrationFactory(member=ada, event__slug="picnic")

    response = upsert(api, {"phone": PHONE, "event": "picnic"})

    assert response.status_code == 200
    assert counts() == (1, 1, 0)


def test_an_opted_out_phone_is_upserted_and_stays_opted_out(api):
    OptOutFactory(phone=PHONE)

    response = upsert(api, {"phone": PHONE, "first_name": "Kofi"})

    assert response.status_code == 201
    assert OptOut.objects.active().filter(phone=PHONE).count() == 1
    assert counts() == (1, 0, 1)


def test_invalid_values_are_refused_field_by_field_and_nothing_is_written(api, ada):
    EventFactory(slug="picnic")
    before = stored()

    response = upsert(
        api,
        {
            "phone": PHONE,
            "first_name": "x" * 101,
            "email": "not-an-email",
            "timezone": "Mars/Olympus_Mons",
            "community": "yes",
            "daily": 1,
            "fields": {"team": 7},
            "colour": "teal",
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "message": "The request has errors; see fields.",
        "fields": {
            "first_name": ["At most 100 characters (this has 101)."],
            "email": ["Enter a valid email address."],
            "timezone": ["Unknown time zone: use an IANA name such as America/New_York."],
            "community": ["Must be true or false."],
            "daily": ["Must be true or false."],
            "fields": ["'team': Must be a string."],
            "colour": ["Unknown field."],
        },
    }
    assert stored() == before
    assert counts() == (1, 0, 0)


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        (None, "This field is required."),
        ("12345", "Too short to be a phone number."),
        ("not a phone", "Not a phone number."),
        (14155552671, "Must be a string."),
        ("1" * 10_000, "At most 64 characters (this has 10000)."),
    ],
)
def test_an_invalid_phone_is_refused(api, phone, message):
    body = {"first_name": "Mei"} if phone is None else {"phone": phone}

    response = upsert(api, body)

    assert response.status_code == 400
    assert response.json()["fields"] == {"phone": [message]}
    assert counts() == (0, 0, 0)


def test_an_unknown_event_is_refused_on_its_field(api):
    response = upsert(api, {"phone": PHONE, "event": "no-such-event"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"event": ["No event with this slug."]}
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"phone": "+1415555\x002671"}, {"phone": ["May not contain NUL characters."]}),
        (
            {"phone": PHONE, "first_name": "Ada\x00"},
            {"first_name": ["May not contain NUL characters."]},
        ),
        (
            {"phone": PHONE, "fields": {"team": "a\x00b"}},
            {"fields": ["'team': May not contain NUL characters."]},
        ),
        (
            {"phone": PHONE, "fields": {"te\x00am": "a"}},
            {"fields": ["'team': the name: May not contain NUL characters."]},
        ),
        (
            {"phone": PHONE, "timezone": "Europe/\x00London"},
            {"timezone": ["May not contain NUL characters."]},
        ),
        ({"phone": PHONE, "event": "pic\x00nic"}, {"event": ["May not contain NUL characters."]}),
        ({"phone": PHONE, "ph\x00one": "x"}, {"phone": ["Unknown field."]}),
    ],
)
def test_nul_characters_are_refused(api, body, errors):
    response = upsert(api, body)

    assert response.status_code == 400
    assert response.json()["fields"] == errors
    assert counts() == (0, 0, 0)


def test_an_unpaired_surrogate_is_refused_rather_than_failing_in_the_database(api):
    response = api.post(
        reverse("api-contacts"),
        data='{"phone": "+14155552671", "last_name": "\\ud800", "\\udfff": 1}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "last_name": ["Not valid Unicode text (an unpaired surrogate)."],
        "?": ["Unknown field."],
    }
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"phone": PHONE, "fields": ["team"]}, ["Must be an object of merge fields"]),
        ({"phone": PHONE, "fields": {" ": "x"}}, ["' ': a merge field needs a name."]),
        (
            {"phone": PHONE, "fields": {"Team": "a", "team": "b"}},
            ["'team': another name here means the same merge field 'team'."],
        ),
        ({"phone": PHONE, "fields": {"team": "x" * 1001}}, ["'team': At most 1000 characters"]),
        ({"phone": PHONE, "fields": {str(n): "x" for n in range(101)}}, ["At most 100 merge"]),
    ],
)
def test_invalid_merge_fields_are_refused(api, body, errors):
    response = upsert(api, body)

    assert response.status_code == 400
    messages = response.json()["fields"]["fields"]
    assert [message[: len(start)] for message, start in zip(messages, errors, strict=True)] == (
        errors
    )
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize("body", ["[]", '"+14155552671"', "42", "null", "{not json"])
def test_a_body_that_is_not_a_json_object_is_a_400(api, body):
    response = api.post(reverse("api-contacts"), data=body, content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()) >= {"error", "message"}
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize("name", ["api-contacts", "api-contacts-bulk"])
def test_json_nested_too_deep_for_the_parser_is_a_400(api, name):
    body = '{"phone": "+14155552671", "fields": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = api.post(reverse(name), data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error",
        "message": "JSON parse error - nested too deeply.",
    }
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize("name", ["api-contacts", "api-contacts-bulk"])
def test_a_request_without_a_key_is_a_401(name):
    response = post(APIClient(), name, {"phone": PHONE})

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize("name", ["api-contacts", "api-contacts-bulk"])
def test_a_key_without_the_contacts_scope_is_a_403(name):
    client = client_with(ApiKey.Scope.SEND, ApiKey.Scope.READ)

    response = post(client, name, {"contacts": [{"phone": PHONE}]})

    assert response.status_code == 403
    assert response.json() == {
        "error": "permission_denied",
        "message": "This API key lacks the 'contacts' scope.",
    }
    assert counts() == (0, 0, 0)


# --- In bulk ------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_bulk_writes_the_good_contacts_and_reports_the_bad_ones_by_index(api, ada):
    response = bulk(
        api,
        {
            "contacts": [
                {"phone": OTHER_PHONE, "first_name": "Grace"},
                {"phone": "12345", "first_name": "Nobody"},
                {"phone": PHONE, "last_name": "King"},
                "not a contact",
                {"phone": THIRD_PHONE, "email": "nope", "colour": "red"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 1,
        "duplicates": 0,
        "rejected": 3,
        "errors": [
            {
                "index": 1,
                "phone": "12345",
                "fields": {"phone": ["Too short to be a phone number."]},
            },
            {
                "index": 3,
                "phone": None,
                "fields": {"non_field_errors": ["Expected a contact: a JSON object."]},
            },
            {
                "index": 4,
                "phone": THIRD_PHONE,
                "fields": {"colour": ["Unknown field."], "email": ["Enter a valid email address."]},
            },
        ],
    }
    assert stored(OTHER_PHONE)["first_name"] == "Grace"
    assert stored(OTHER_PHONE)["is_community"] is True
    assert stored()["last_name"] == "King"
    assert stored()["first_name"] == "Ada"
    assert stored()["updated_at"] == NOW
    assert counts() == (2, 0, 0)


def test_bulk_with_the_same_phone_twice_writes_the_last_and_counts_it_once(api):
    response = bulk(
        api,
        {
            "contacts": [
                {"phone": PHONE, "first_name": "First", "email": "first@example.org"},
                {"phone": "(415) 555-2671", "first_name": "Second"},
                {"phone": PHONE, "first_name": "Bad", "email": "bad"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 0,
        "duplicates": 1,
        "rejected": 1,
        "errors": [
            {"index": 2, "phone": PHONE, "fields": {"email": ["Enter a valid email address."]}}
        ],
    }
    # The last valid one wins whole: the first one's email is not merged in.
    assert stored()["first_name"] == "Second"
    assert stored()["email"] == ""
    assert counts() == (1, 0, 0)


def test_bulk_registers_every_contact_for_the_shared_event_and_its_own(api, ada):
    picnic = EventFactory(slug="picnic")
    gala = EventFactory(slug="gala")

    response = bulk(
        api,
        {
            "event": "picnic",
            "contacts": [
                {"phone": PHONE},
                {"phone": OTHER_PHONE, "event": "gala"},
                {"phone": THIRD_PHONE, "event": "no-such-event"},
            ],
        },
    )

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"index": 2, "phone": THIRD_PHONE, "fields": {"event": ["No event with this slug."]}}
    ]
    registrations = set(EventRegistration.objects.values_list("member__phone", "event__slug"))
    assert registrations == {(PHONE, "picnic"), (OTHER_PHONE, "picnic"), (OTHER_PHONE, "gala")}
    assert stored(OTHER_PHONE)["is_community"] is False
    assert picnic.registrations.count() == 2
    assert gala.registrations.count() == 1
    assert counts() == (2, 3, 0)


def test_bulk_with_an_unknown_shared_event_writes_nothing(api):
    response = bulk(api, {"event": "no-such-event", "contacts": [{"phone": PHONE}]})

    assert response.status_code == 400
    assert response.json()["fields"] == {"event": ["No event with this slug."]}
    assert counts() == (0, 0, 0)


def test_bulk_over_the_limit_is_refused_whole(api):
    contacts = [{"phone": us_mobile(n)} for n in range(10_001)]

    response = bulk(api, {"contacts": contacts})

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "contacts": ["At most 10,000 contacts in one request (this has 10,001)."]
    }
    assert counts() == (0, 0, 0)


def test_bulk_with_no_contacts_writes_nothing(api):
    response = bulk(api, {"contacts": []})

    assert response.status_code == 200
    assert response.json() == {
        "created": 0,
        "updated": 0,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }
    assert counts() == (0, 0, 0)


def test_a_phone_created_meanwhile_by_another_writer_is_updated_on_the_next_attempt(
    api, monkeypatch
):
    MemberFactory(phone=PHONE, first_name="Ada", is_daily_subscriber=True)
    real_existing_members = contacts_service._existing_members
    reads = []

    def read_before_a_join_text_committed_its_member(phones):
        reads.append(phones)
        return {} if len(reads) == 1 else real_existing_members(phones)

    monkeypatch.setattr(
        contacts_service, "_existing_members", read_before_a_join_text_committed_its_member
    )

    response = upsert(api, {"phone": PHONE, "last_name": "Ali"})

    assert response.status_code == 200
    assert len(reads) == 2
    assert (stored()["first_name"], stored()["last_name"]) == ("Ada", "Ali")
    assert stored()["is_daily_subscriber"] is True
    assert counts() == (1, 0, 0)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([{"phone": PHONE}], {"non_field_errors": ["Expected a JSON object with contacts."]}),
        ({}, {"contacts": ["Expected a list of contacts."]}),
        ({"contacts": {"phone": PHONE}}, {"contacts": ["Expected a list of contacts."]}),
        (
            {"contacts": [], "dry_run": True},
            {"dry_run": ["Unknown field."]},
        ),
        ({"contacts": [], "event": 7}, {"event": ["Must be a string."]}),
    ],
)
def test_bulk_refuses_a_request_of_the_wrong_shape(api, body, errors):
    response = bulk(api, body)

    assert response.status_code == 400
    assert response.json()["fields"] == errors
    assert counts() == (0, 0, 0)


def test_bulk_of_many_contacts_writes_in_a_few_queries(api, django_assert_max_num_queries):
    MemberFactory.create_batch(500)  # the first 500 phones of us_mobile are taken
    contacts = [
        {"phone": us_mobile(n), "first_name": f"Member {n}", "fields": {"row": str(n)}}
        for n in range(2_000)
    ]

    # Authentication, the lock, the read, two inserts and one update per 1,000 rows.
    with django_assert_max_num_queries(12):
        response = bulk(api, {"contacts": contacts})

    assert response.status_code == 200
    assert response.json()["created"] + response.json()["updated"] == 2_000
    assert Member.objects.filter(fields__row="1999", first_name="Member 1999").exists()
    assert counts() == (2_000, 0, 0)


# --- The schema -------------------------------------------------------------------------


def test_the_documented_contact_has_the_fields_that_are_validated():
    assert set(ContactUpsertSerializer().fields) == set(CONTACT_FIELDS)
    assert set(ContactBulkUpsertSerializer().fields) == {"contacts", "event"}


def test_the_schema_describes_both_routes():
    response = APIClient().get(reverse("api-schema"), {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/contacts", "/api/v1/contacts/bulk"):
        assert set(paths[path]["post"]["responses"]) >= {"200", "400", "401", "403", "429"}
    assert "201" in paths["/api/v1/contacts"]["post"]["responses"]
