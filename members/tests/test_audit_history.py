"""Audit history: admin edits, opt-outs and opt-ins, API keys and users say who changed
what and when, on each object's History page, and never record a secret."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from delivery.api.models import ApiKey
from delivery.tests.test_api_keys import create_key_in_admin
from members.roles import SOCIAL_MANAGER
from members.services import opt_in_phone, opt_out_phone
from members.tests.factories import (
    STAFF_PASSWORD,
    MemberFactory,
    UserFactory,
    admin_user,
    social_manager,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member_form(member, **changes) -> dict:
    return {
        "phone": member.phone,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "is_community": "on",
        "daily_send_time": "",
        "timezone": "",
        "fields": "{}",
        "_save": "Save",
        **changes,
    }


def test_an_admin_edit_of_a_member_shows_who_changed_which_field_on_its_history_page():
    manager = social_manager(username="sam")
    member = MemberFactory(first_name="Ada")
    client = client_for(manager)

    response = client.post(
        reverse("admin:members_member_change", args=[member.pk]),
        member_form(member, first_name="Adeline"),
    )
    page = client.get(reverse("admin:members_member_history", args=[member.pk]))

    assert response.status_code == 302, response.content.decode()[:2000]
    latest = member.history.latest()
    assert (latest.history_type, latest.history_user, latest.first_name) == (
        "~",
        manager,
        "Adeline",
    )
    changed = [change.field for change in latest.diff_against(latest.prev_record).changes]
    assert "first_name" in changed
    assert page.status_code == 200
    assert "Adeline" in page.content.decode()
    assert "sam" in page.content.decode()


def test_opting_out_and_back_in_through_the_services_is_recorded_with_who_did_it():
    admin = admin_user(username="ann")

    opt_out = opt_out_phone(phone="+14155552671", source="staff", reason="asked by phone", by=admin)
    opt_in_phone(phone="+14155552671", reason="texted START", by=admin)

    records = list(opt_out.history.order_by("history_date"))
    assert [record.history_type for record in records] == ["+", "~"]
    assert records[0].lifted_at is None
    assert (records[1].lifted_by, records[1].lifted_reason) == (admin, "texted START")


def test_api_key_history_records_create_and_revoke_but_never_the_hashed_key():
    admin = admin_user(username="ann")
    client = client_for(admin)
    api_key, plaintext, _ = create_key_in_admin(client)

    client.post(
        reverse("admin:delivery_apikey_change", args=[api_key.pk]),
        {
            "name": "CRM",
            "scopes": ["send", "read"],
            "rate_limit_per_minute": "600",
            "expiry_date_0": "",
            "expiry_date_1": "",
            "revoked": "on",
            "_save": "Save",
        },
    )
    page = client.get(reverse("admin:delivery_apikey_history", args=[api_key.pk]))

    api_key.refresh_from_db()
    history_model = ApiKey.history.model
    field_names = {field.name for field in history_model._meta.fields}
    assert "hashed_key" not in field_names
    assert api_key.hashed_key not in api_key.prefix
    stored_ids = set(history_model.objects.values_list("id", flat=True))
    assert stored_ids == {api_key.prefix}
    records = list(api_key.history.order_by("history_date"))
    assert [(record.history_type, record.revoked) for record in records] == [
        ("+", False),
        ("~", True),
    ]
    assert {record.history_user for record in records} == {admin}
    stored = [str(row) for row in history_model.objects.values_list()]
    assert not [row for row in stored if api_key.hashed_key in row or plaintext in row]
    assert page.status_code == 200


def test_user_history_records_role_changes_without_the_password_or_logins():
    admin = admin_user(username="ann")
    user = UserFactory(username="newcomer")
    client = Client()
    login = client.post(
        reverse("admin:login"), {"username": "newcomer", "password": STAFF_PASSWORD}
    )
    assert login.status_code == 302
    rows_before = user.history.count()

    user.groups.add(Group.objects.get(name=SOCIAL_MANAGER))
    page = client_for(admin).get(reverse("admin:auth_user_history", args=[user.pk]))

    history_fields = {field.name for field in type(user).history.model._meta.fields}
    assert "password" not in history_fields
    assert "last_login" not in history_fields
    assert user.history.count() == rows_before + 1
    assert [group.group.name for group in user.history.latest().groups.all()] == [SOCIAL_MANAGER]
    assert page.status_code == 200


def test_campaign_history_page_opens_to_social_managers_and_cannot_revert():
    manager = social_manager(username="sam")
    campaign = Campaign.objects.create(name="Spring news", body="Hi {first_name}!")
    campaign.name = "Spring news, take two"
    campaign.save()
    client = client_for(manager)
    first = campaign.history.earliest()

    page = client.get(reverse("admin:campaigns_campaign_history", args=[campaign.pk]))
    revert = client.post(
        reverse("admin:campaigns_campaign_simple_history", args=[campaign.pk, first.history_id]),
        {"name": "Spring news", "body": "Hi {first_name}!"},
    )

    assert page.status_code == 200
    assert "Spring news, take two" in page.content.decode()
    assert revert.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name == "Spring news, take two"
    assert campaign.history.count() == 2
