"""API keys: Admins create them in the admin (shown once, stored hashed) and revoke them;
nothing but a key opens the API."""

from __future__ import annotations

import base64
import re

import pytest
from django.db import connection
from django.urls import reverse

from delivery.api.models import ApiKey
from members.tests.factories import STAFF_PASSWORD, admin_user, social_manager

pytestmark = pytest.mark.django_db

MESSAGES = "/api/v1/messages"
KEY_SHOWN = re.compile(r"The API key for CRM is: (\S+)\. ")


def create_key_in_admin(client) -> tuple[ApiKey, str, list[str]]:
    response = client.post(
        reverse("admin:delivery_apikey_add"),
        {
            "name": "CRM",
            "scopes": ["send", "read"],
            "rate_limit_per_minute": "600",
            "expiry_date_0": "",
            "expiry_date_1": "",
            "_save": "Save",
        },
        follow=True,
    )
    assert response.redirect_chain, response.content.decode()[:2000]
    shown = [str(message) for message in response.context["messages"]]
    keys = [match.group(1) for text in shown if (match := KEY_SHOWN.search(text))]
    assert len(keys) == 1, shown
    return ApiKey.objects.get(), keys[0], shown


def list_messages(client, plaintext: str):
    return client.get(MESSAGES, headers={"Authorization": f"Api-Key {plaintext}"})


def test_an_admin_creates_a_key_that_is_shown_once_and_stored_hashed(client):
    admin = admin_user()
    client.force_login(admin)

    api_key, plaintext, shown = create_key_in_admin(client)

    assert api_key.name == "CRM"
    assert api_key.scopes == ["send", "read"]
    assert api_key.created_by == admin
    assert plaintext.startswith(f"{api_key.prefix}.")
    secret = plaintext.partition(".")[2]
    assert secret not in api_key.hashed_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM delivery_apikey")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert secret not in stored
    assert plaintext not in stored
    assert any(plaintext in text for text in shown)
    # Shown once: the list and the key's own page never show it again.
    listing = client.get(reverse("admin:delivery_apikey_changelist"))
    detail = client.get(reverse("admin:delivery_apikey_change", args=[api_key.pk]))
    assert secret not in listing.content.decode()
    assert secret not in detail.content.decode()


def test_a_key_created_in_the_admin_opens_the_api(client):
    client.force_login(admin_user())
    _, plaintext, _ = create_key_in_admin(client)
    client.logout()

    response = list_messages(client, plaintext)

    assert response.status_code == 200


def test_revoking_a_key_in_the_admin_closes_the_api_to_it(client):
    client.force_login(admin_user())
    api_key, plaintext, _ = create_key_in_admin(client)
    assert list_messages(client, plaintext).status_code == 200

    response = client.post(
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

    assert response.status_code == 302, response.content.decode()[:2000]
    api_key.refresh_from_db()
    assert api_key.revoked
    assert list_messages(client, plaintext).status_code == 401


def test_a_key_cannot_be_deleted_in_the_admin(client):
    client.force_login(admin_user())
    api_key, _, _ = create_key_in_admin(client)

    response = client.get(reverse("admin:delivery_apikey_delete", args=[api_key.pk]))

    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=api_key.pk).exists()


@pytest.mark.parametrize(
    "url_name", ["admin:delivery_apikey_changelist", "admin:delivery_apikey_add"]
)
def test_social_managers_cannot_open_the_api_key_admin(client, url_name):
    client.force_login(social_manager())

    response = client.get(reverse(url_name))

    assert response.status_code == 403


def test_a_logged_in_admin_without_a_key_is_unauthorized(client):
    client.force_login(admin_user())

    listing = client.get(MESSAGES)
    sending = client.post(
        MESSAGES, {"to": "+14155550132", "body": "Hi"}, content_type="application/json"
    )

    assert listing.status_code == 401
    assert sending.status_code == 401


def test_basic_authentication_does_not_open_the_api(client):
    admin = admin_user()
    credentials = base64.b64encode(f"{admin.username}:{STAFF_PASSWORD}".encode()).decode()

    response = client.get(MESSAGES, headers={"Authorization": f"Basic {credentials}"})

    assert response.status_code == 401
