"""The members, events and registrations admin: phone search, filters, the member form."""

from __future__ import annotations

import json
from datetime import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.http import urlencode

from members.models import EventRegistration, Member
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
    UserFactory,
    social_manager,
)

pytestmark = pytest.mark.django_db

MEMBERS_URL = reverse("admin:members_member_changelist")
ADD_MEMBER_URL = reverse("admin:members_member_add")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_client() -> Client:
    """A Social manager: everything here must work for the everyday role, not only Admins."""
    client = Client()
    client.force_login(social_manager())
    return client


def listed(client: Client, url: str = MEMBERS_URL, **params: object) -> list[Member]:
    response = client.get(url, params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def member_form_data(**overrides: object) -> dict[str, object]:
    data = {
        "phone": "",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "",
        "is_community": "on",
        "timezone": "",
        "fields": "{}",
    }
    data.update(overrides)
    return data


# --- Search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["(415) 555-2671", "415.555.2671", "+1 415 555 2671", "14155552671", "+14155552671"]
)
def test_phone_typed_in_any_format_finds_exactly_that_member(staff_client, typed):
    wanted = MemberFactory(phone="+14155552671")
    MemberFactory(phone="+14155552672")  # one digit apart
    MemberFactory(phone="+12125552671")  # same line number, another area code
    MemberFactory(phone="+447911123456")

    assert listed(staff_client, q=typed) == [wanted]


def test_name_search_matches_first_and_last_names(staff_client):
    ada = MemberFactory(first_name="Ada", last_name="Lovelace")
    grace = MemberFactory(first_name="Grace", last_name="Hopper")
    MemberFactory(first_name="Kofi", last_name="Annan")

    assert listed(staff_client, q="lovelace") == [ada]
    assert listed(staff_client, q="Grace hop") == [grace]


def test_part_of_a_number_finds_the_numbers_containing_it(staff_client):
    wanted = MemberFactory(phone="+14155552671")
    MemberFactory(phone="+14155550000")

    assert listed(staff_client, q="2671") == [wanted]


@pytest.mark.parametrize("term", ["+1 (", "555-", "1-800-FLOWERS", "((((", "名前", "%_"])
def test_search_terms_that_are_not_phone_numbers_do_not_crash(staff_client, term):
    MemberFactory(first_name="Ada", phone="+14155552671")

    assert listed(staff_client, q=term) == []


# --- Filters and columns -------------------------------------------------------------------


@pytest.fixture
def cast() -> dict[str, Member]:
    """Members who differ in exactly the ways the filters look at."""
    picnic, volunteer_day = EventFactory(name="Picnic"), EventFactory(name="Volunteer day")
    members = {
        "daily": MemberFactory(is_community=True, is_daily_subscriber=True),
        "opted_out": MemberFactory(is_community=True),
        "suppressed_event_only": MemberFactory(is_community=False),
        "volunteer": MemberFactory(is_community=True),
        "opt_out_lifted": MemberFactory(is_community=True),
    }
    OptOutFactory(phone=members["opted_out"].phone)
    OptOutFactory(phone=members["opt_out_lifted"].phone).lift(reason="texted START")
    SuppressionFactory(phone=members["suppressed_event_only"].phone)
    EventRegistrationFactory(event=picnic, member=members["suppressed_event_only"])
    EventRegistrationFactory(event=volunteer_day, member=members["volunteer"])
    EventRegistrationFactory(event=volunteer_day, member=members["daily"])
    members["picnic"], members["volunteer_day"] = picnic, volunteer_day  # type: ignore[assignment]
    return members


def names(members: list[Member], cast: dict[str, Member]) -> set[str]:
    by_pk = {member.pk: name for name, member in cast.items() if isinstance(member, Member)}
    return {by_pk[member.pk] for member in members}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"opted_out": "yes"}, {"opted_out"}),
        (
            {"opted_out": "no"},
            {"daily", "suppressed_event_only", "volunteer", "opt_out_lifted"},
        ),
        ({"suppressed": "yes"}, {"suppressed_event_only"}),
        ({"suppressed": "no"}, {"daily", "opted_out", "volunteer", "opt_out_lifted"}),
        ({"is_community__exact": "0"}, {"suppressed_event_only"}),
        (
            {"is_community__exact": "1"},
            {"daily", "opted_out", "volunteer", "opt_out_lifted"},
        ),
        ({"is_daily_subscriber__exact": "1"}, {"daily"}),
        ({"opted_out": "no", "suppressed": "no"}, {"daily", "volunteer", "opt_out_lifted"}),
    ],
    ids=lambda value: (
        "&".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None
    ),
)
def test_member_filters_return_exactly_the_matching_members(staff_client, cast, params, expected):
    assert names(listed(staff_client, **params), cast) == expected


def test_event_filter_returns_exactly_the_event_registrants(staff_client, cast):
    volunteer_day = cast["volunteer_day"]

    found = listed(staff_client, event=volunteer_day.pk)

    assert names(found, cast) == {"volunteer", "daily"}


def test_member_list_shows_opted_out_and_suppressed_flags(staff_client, cast):
    rows = {member.pk: member for member in listed(staff_client)}

    flags = {
        name: (rows[member.pk].is_opted_out, rows[member.pk].is_suppressed)
        for name, member in cast.items()
        if isinstance(member, Member)
    }
    assert flags == {
        "daily": (False, False),
        "opted_out": (True, False),
        "suppressed_event_only": (False, True),
        "volunteer": (False, False),
        "opt_out_lifted": (False, False),
    }


def test_member_list_queries_do_not_grow_with_the_rows_shown(staff_client):
    MemberFactory.create_batch(3)
    with CaptureQueriesContext(connection) as few_rows:
        listed(staff_client)
    for member in MemberFactory.create_batch(40):
        OptOutFactory(phone=member.phone)
    with CaptureQueriesContext(connection) as many_rows:
        listed(staff_client)

    assert len(many_rows) == len(few_rows)


def test_member_list_does_not_count_the_whole_table_twice(staff_client):
    MemberFactory.create_batch(3)

    response = staff_client.get(MEMBERS_URL, {"is_daily_subscriber__exact": "1"})

    assert response.context["cl"].show_full_result_count is False
    assert response.context["cl"].full_result_count is None


# --- The member form -----------------------------------------------------------------------


def test_member_added_with_a_local_number_is_stored_in_e164_with_its_time_zones(staff_client):
    response = staff_client.post(ADD_MEMBER_URL, member_form_data(phone="(415) 555-2671"))

    assert response.status_code == 302
    member = Member.objects.get()
    assert member.phone == "+14155552671"
    assert member.number_timezones == ["America/Los_Angeles"]


def test_staff_subscribe_a_member_to_the_daily_message_at_their_own_time(staff_client):
    data = member_form_data(phone="(415) 555-2671")
    data.update(is_daily_subscriber="on", daily_send_time="07:15")

    response = staff_client.post(ADD_MEMBER_URL, data)

    assert response.status_code == 302
    member = Member.objects.get()
    assert (member.is_daily_subscriber, member.daily_send_time) == (True, time(7, 15))
    # Confirmed later, inside polite hours, by the daily delivery: not by the admin.
    assert member.daily_confirmed_at is None


def test_member_with_an_international_number_gets_that_countrys_time_zones(staff_client):
    staff_client.post(ADD_MEMBER_URL, member_form_data(phone="+254 712 345 678"))

    member = Member.objects.get()
    assert (member.phone, member.number_timezones) == ("+254712345678", ["Africa/Nairobi"])


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("555-12", "Too short to be a phone number."),
        ("(415) 555-26711234567", "Too long to be a phone number."),
        ("hello", "Not a phone number."),
        ("+44 20 7946 0958", "This is a landline, which cannot receive text messages."),
    ],
)
def test_invalid_phone_is_refused_with_a_clear_message_and_nothing_saved(
    staff_client, typed, message
):
    response = staff_client.post(ADD_MEMBER_URL, member_form_data(phone=typed))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["phone"] == [f"{message} Please check the number."]
    assert Member.objects.count() == 0


def test_phone_of_an_existing_member_typed_differently_is_refused_as_a_duplicate(staff_client):
    MemberFactory(phone="+14155552671", first_name="Grace")

    response = staff_client.post(ADD_MEMBER_URL, member_form_data(phone="415.555.2671"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone"] == [
        "Member with this Phone already exists."
    ]
    assert list(Member.objects.values_list("first_name", flat=True)) == ["Grace"]


def test_changing_the_phone_renormalises_it_and_updates_the_time_zones(staff_client):
    member = MemberFactory(phone="+14155552671", number_timezones=["America/Los_Angeles"])
    url = reverse("admin:members_member_change", args=[member.pk])

    response = staff_client.post(url, member_form_data(phone="212 555 0199"))

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.phone, member.number_timezones) == ("+12125550199", ["America/New_York"])
    assert member.updated_at > member.created_at


def test_unknown_time_zone_is_refused(staff_client):
    response = staff_client.post(
        ADD_MEMBER_URL, member_form_data(phone="+14155552671", timezone="Mars/Olympus")
    )

    assert "timezone" in response.context["adminform"].form.errors
    assert Member.objects.count() == 0


def test_merge_fields_are_shown_as_a_table_and_stay_editable(staff_client):
    member = MemberFactory(fields={"neighborhood": "Mission", "favorite_color": "teal"})
    url = reverse("admin:members_member_change", args=[member.pk])

    page = staff_client.get(url)
    response = staff_client.post(
        url,
        member_form_data(
            phone=member.phone,
            first_name=member.first_name,
            last_name=member.last_name,
            fields=json.dumps({"neighborhood": "Riverside", "shirt_size": "M"}),
        ),
    )

    html = page.content.decode()
    assert "<tr><th>favorite_color</th><td>teal</td></tr>" in html
    assert "<tr><th>neighborhood</th><td>Mission</td></tr>" in html
    assert 'name="fields"' in html
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.fields == {"neighborhood": "Riverside", "shirt_size": "M"}


@pytest.mark.parametrize(
    "fields", ['["a list"]', '{"nested": {"a": 1}}'], ids=["a-list", "nested-object"]
)
def test_merge_fields_that_are_not_flat_name_value_pairs_are_refused(staff_client, fields):
    response = staff_client.post(
        ADD_MEMBER_URL, member_form_data(phone="+14155552671", fields=fields)
    )

    assert "fields" in response.context["adminform"].form.errors
    assert Member.objects.count() == 0


def test_member_page_lists_events_and_links_to_the_opt_out_and_suppression(staff_client):
    member = MemberFactory()
    registration = EventRegistrationFactory(member=member, event=EventFactory(name="Picnic"))
    opt_out = OptOutFactory(phone=member.phone)
    suppression = SuppressionFactory(phone=member.phone)

    html = staff_client.get(reverse("admin:members_member_change", args=[member.pk])).content
    html = html.decode()

    event_url = reverse("admin:members_event_change", args=[registration.event.pk])
    assert f'<a href="{event_url}">Picnic</a>' in html
    assert reverse("admin:members_optout_change", args=[opt_out.pk]) in html
    assert reverse("admin:members_suppression_change", args=[suppression.pk]) in html
    assert "No: opted out since" in html
    assert "No: suppressed since" in html


def test_member_page_says_a_member_without_blocks_can_be_texted(staff_client):
    member = MemberFactory()
    OptOutFactory(phone=member.phone).lift(reason="texted START")

    html = staff_client.get(reverse("admin:members_member_change", args=[member.pk])).content

    assert b"Yes: neither opted out nor suppressed." in html
    assert b"No: opted out" not in html
    opt_out_link = reverse("admin:members_optout_add") + "?" + urlencode({"phone": member.phone})
    assert f'href="{opt_out_link}"'.encode() in html.replace(b"&amp;", b"&")
    add_form = staff_client.get(opt_out_link).context["adminform"].form
    assert add_form.initial["phone"] == member.phone


# --- The import button ---------------------------------------------------------------------


def test_member_list_offers_the_csv_import_to_users_who_may_import(staff_client):
    html = staff_client.get(MEMBERS_URL).content.decode()

    assert f'href="{reverse("admin:members_importjob_add")}"' in html
    assert "Import from CSV" in html


def test_member_list_hides_the_csv_import_from_users_who_may_not_import():
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_member"))
    client = Client()
    client.force_login(viewer)

    html = client.get(MEMBERS_URL).content.decode()

    assert "Import from CSV" not in html


# --- Events and registrations --------------------------------------------------------------


def test_event_list_counts_registrations_and_links_to_the_registrants(staff_client):
    picnic, empty = EventFactory(name="Picnic"), EventFactory(name="Empty")
    registrants = MemberFactory.create_batch(3)
    for member in registrants:
        EventRegistrationFactory(event=picnic, member=member)
    MemberFactory()  # not registered

    response = staff_client.get(reverse("admin:members_event_changelist"))

    counts = {event.name: event.registration_count for event in response.context["cl"].result_list}
    assert counts == {"Picnic": 3, "Empty": 0}
    members_link = f"{MEMBERS_URL}?event={picnic.pk}"
    assert f'href="{members_link}"' in response.content.decode()
    assert set(listed(staff_client, event=picnic.pk)) == set(registrants)
    assert listed(staff_client, event=empty.pk) == []


def test_event_list_queries_do_not_grow_with_the_rows_shown(staff_client):
    url = reverse("admin:members_event_changelist")
    EventRegistrationFactory()
    with CaptureQueriesContext(connection) as few_rows:
        staff_client.get(url)
    EventRegistrationFactory.create_batch(20)
    with CaptureQueriesContext(connection) as many_rows:
        staff_client.get(url)

    assert len(many_rows) == len(few_rows)


def test_registration_is_added_by_picking_member_and_event(staff_client):
    member, event = MemberFactory(), EventFactory()

    response = staff_client.post(
        reverse("admin:members_eventregistration_add"),
        {
            "member": member.pk,
            "event": event.pk,
            "registered_at_0": "2025-05-01",
            "registered_at_1": "10:00:00",
        },
    )

    assert response.status_code == 302
    assert list(EventRegistration.objects.values_list("member", "event")) == [(member.pk, event.pk)]


def test_member_autocomplete_for_registrations_finds_a_member_by_phone(staff_client):
    wanted = MemberFactory(phone="+14155552671")
    MemberFactory(phone="+14155552672")

    response = staff_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "members",
            "model_name": "eventregistration",
            "field_name": "member",
            "term": "(415) 555-2671",
        },
    )

    assert [result["id"] for result in response.json()["results"]] == [str(wanted.pk)]


def test_registrations_of_one_member_are_listed_from_the_member_page(staff_client):
    member = MemberFactory()
    mine = EventRegistrationFactory(member=member)
    EventRegistrationFactory()

    found = listed(
        staff_client,
        reverse("admin:members_eventregistration_changelist"),
        member__id__exact=member.pk,
    )

    assert found == [mine]


def test_registration_list_search_finds_a_member_by_phone_in_any_format(staff_client):
    mine = EventRegistrationFactory(member=MemberFactory(phone="+14155552671"))
    EventRegistrationFactory(member=MemberFactory(phone="+14155552672"))

    found = listed(
        staff_client, reverse("admin:members_eventregistration_changelist"), q="415-555-2671"
    )

    assert found == [mine]
