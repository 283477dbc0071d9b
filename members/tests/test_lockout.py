"""Login lockout (django-axes) through the real admin login page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from members.tests.factories import STAFF_PASSWORD, social_manager

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("admin:login")
WRONG_PASSWORD = "not the password"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice():
    return social_manager(username="alice")


def log_in(client: Client, username: str, password: str):
    return client.post(
        LOGIN_URL, {"username": username, "password": password, "next": reverse("admin:index")}
    )


def is_logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def visible_text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def fail_logins(client: Client, username: str, times: int) -> list[int]:
    return [log_in(client, username, WRONG_PASSWORD).status_code for _ in range(times)]


def test_failed_login_shows_the_login_form_again(alice, settings):
    client = Client()

    response = log_in(client, "alice", WRONG_PASSWORD)

    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()
    assert not is_logged_in(client)


def test_after_five_failures_even_the_right_password_gets_the_lockout_page(alice, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    client = Client()

    statuses = fail_logins(client, "alice", 5)
    response = log_in(client, "alice", STAFF_PASSWORD)

    # The fifth failure reaches the limit: it already answers with the lockout page.
    assert statuses == [200, 200, 200, 200, 429]
    assert response.status_code == 429
    assert "admin/lockout.html" in [template.name for template in response.templates]
    text = visible_text(response)
    assert "Too many failed logins" in text
    assert "alice from this address failed 5 times" in text
    assert "Try again in 15 minutes, or ask an Admin to unlock your account." in text
    assert "SMS Admin" in text
    assert not is_logged_in(client)


def test_lockout_of_one_user_name_leaves_other_users_free_to_log_in(alice):
    social_manager(username="bob")
    client = Client()
    fail_logins(client, "alice", 5)

    response = log_in(client, "bob", STAFF_PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(client)


def test_lockout_applies_to_the_address_it_came_from(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    fail_logins(attacker, "alice", 5)
    alice_at_work = Client(REMOTE_ADDR="198.51.100.7")

    response = log_in(alice_at_work, "alice", STAFF_PASSWORD)

    assert response.status_code == 302
    assert is_logged_in(alice_at_work)


def test_a_successful_login_before_the_limit_resets_the_count(alice, settings):
    assert settings.AXES_RESET_ON_SUCCESS
    client = Client()
    assert fail_logins(client, "alice", 4) == [200] * 4
    assert log_in(client, "alice", STAFF_PASSWORD).status_code == 302
    client.post(reverse("admin:logout"))

    statuses = fail_logins(client, "alice", 4)
    response = log_in(client, "alice", STAFF_PASSWORD)

    assert statuses == [200] * 4
    assert response.status_code == 302
    assert is_logged_in(client)


def test_lockout_page_says_when_to_try_again_in_the_configured_minutes(alice, settings):
    settings.AXES_COOLOFF_TIME = 1 / 60  # one minute, in hours
    client = Client()
    fail_logins(client, "alice", 5)

    response = log_in(client, "alice", STAFF_PASSWORD)

    assert "Try again in 1 minute, or ask an Admin" in visible_text(response)
