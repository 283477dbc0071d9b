"""``manage.py seed_demo``: demo staff in both roles and a few hundred members."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory

from members.models import Event, EventRegistration, Member, OptOut, Suppression
from members.phones import normalize
from members.roles import ADMIN, SOCIAL_MANAGER
from members.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_demo(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(\w+)\s+.+?password: (\S+)$", output, flags=re.MULTILINE))


def can_log_in(username: str, password: str) -> bool:
    request = RequestFactory().post("/admin/login/")  # django-axes needs a request
    return authenticate(request, username=username, password=password) is not None


def database_snapshot() -> dict[str, object]:
    users = get_user_model().objects.order_by("username")
    return {
        "users": list(users.values_list("username", "password", "is_staff", "is_superuser")),
        "members": list(Member.objects.order_by("phone").values_list("phone", "updated_at")),
        "events": list(Event.objects.order_by("slug").values_list("slug", flat=True)),
        "registrations": EventRegistration.objects.count(),
        "opt_outs": list(OptOut.objects.order_by("pk").values_list("phone", "lifted_at")),
        "suppressions": list(Suppression.objects.order_by("pk").values_list("phone", "lifted_at")),
    }


def test_seed_demo_creates_one_staff_user_per_role_who_are_not_superusers():
    output = seed_demo()

    users = {user.username: user for user in get_user_model().objects.prefetch_related("groups")}
    assert sorted(users) == ["admin", "manager"]
    assert [group.name for group in users["admin"].groups.all()] == [ADMIN]
    assert [group.name for group in users["manager"].groups.all()] == [SOCIAL_MANAGER]
    assert all(user.is_staff and not user.is_superuser for user in users.values())
    passwords = printed_passwords(output)
    assert sorted(passwords) == ["admin", "manager"]
    assert all(len(password) >= 20 for password in passwords.values())
    assert all(can_log_in(username, password) for username, password in passwords.items())


def test_seed_demo_creates_members_with_normalised_numbers_and_their_time_zones():
    seed_demo()

    members = list(Member.objects.all())
    assert len(members) == 300
    for member in members:
        normalized = normalize(member.phone, region="US")
        assert (member.phone, member.number_timezones) == (
            normalized.e164,
            list(normalized.timezones),
        )
    country_codes = {"+1", "+44", "+61", "+91", "+254"}
    assert {code for code in country_codes if any(m.phone.startswith(code) for m in members)} == (
        country_codes
    )
    assert sum(member.phone.startswith("+1") for member in members) > 250
    american_zones = {m.number_timezones[0] for m in members if m.phone.startswith("+1")}
    assert len(american_zones) >= 4
    assert all(set(member.fields) == {"neighborhood", "favorite_color"} for member in members)
    daily = sum(member.is_daily_subscriber for member in members)
    assert 60 <= daily <= 120  # about 30%


def test_seed_demo_creates_two_events_with_registrations_and_a_few_blocked_numbers():
    seed_demo()

    events = {event.name: event.registrations.count() for event in Event.objects.all()}
    assert sorted(events) == ["Community picnic", "Spring volunteer day"]
    assert all(count >= 50 for count in events.values())
    # Members outside the community pool are there for an event.
    assert not Member.objects.filter(is_community=False, registrations=None).exists()
    assert OptOut.objects.active().count() == 3
    assert Suppression.objects.active().count() == 2
    assert Member.objects.opted_out().count() == 3
    assert Member.objects.suppressed().count() == 2


def test_seed_demo_if_empty_does_nothing_when_a_user_exists():
    seed_demo()
    before = database_snapshot()

    output = seed_demo("--if-empty")

    assert output == "Users exist already: no demo data added (--if-empty).\n"
    assert database_snapshot() == before


def test_seed_demo_if_empty_leaves_a_database_with_only_a_superuser_alone():
    UserFactory(username="owner", is_superuser=True)
    before = database_snapshot()

    seed_demo("--if-empty")

    assert database_snapshot() == before
    assert Member.objects.count() == 0


def test_seed_demo_if_empty_seeds_an_empty_database():
    output = seed_demo("--if-empty")

    assert sorted(printed_passwords(output)) == ["admin", "manager"]
    assert Member.objects.count() == 300


def test_seed_demo_run_twice_adds_nothing_and_gives_the_demo_users_new_passwords():
    first_passwords = printed_passwords(seed_demo())
    before = database_snapshot()

    second_passwords = printed_passwords(seed_demo())

    after = database_snapshot()
    assert {key: value for key, value in after.items() if key != "users"} == {
        key: value for key, value in before.items() if key != "users"
    }
    assert [user[0] for user in after["users"]] == ["admin", "manager"]  # type: ignore[index]
    for username in ("admin", "manager"):
        assert second_passwords[username] != first_passwords[username]
        assert can_log_in(username, second_passwords[username])
        assert not can_log_in(username, first_passwords[username])
