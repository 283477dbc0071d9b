"""Optional TOTP two-factor for staff, through the real admin login and enrolment pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from members.tests.factories import STAFF_PASSWORD, admin_user, social_manager

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("admin:login")
ENROL_URL = reverse("admin:otp_totp_totpdevice_enrol")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"


def log_in(client: Client, username: str, code: str = ""):
    return client.post(
        LOGIN_URL,
        {
            "username": username,
            "password": STAFF_PASSWORD,
            "otp_token": code,
            "next": reverse("admin:index"),
        },
    )


def with_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def test_login_with_the_current_code_of_the_users_device_works():
    device = with_device(admin_user(username="ann"))
    client = Client()

    response = log_in(client, "ann", current_code(device))

    assert response.status_code == 302
    assert SESSION_KEY in client.session
    assert client.get(reverse("admin:index")).wsgi_request.user.is_verified()


@pytest.mark.parametrize("code", ["000000", ""], ids=["wrong", "missing"])
def test_login_with_a_wrong_or_missing_code_is_refused(code):
    device = with_device(admin_user(username="ann"))
    if code == "000000" and current_code(device) == code:
        code = "111111"
    client = Client()

    response = log_in(client, "ann", code)

    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert response.context["form"].non_field_errors()
    # The password was right: the code's throttling counts it, not django-axes' lockout.
    device.refresh_from_db()
    assert device.throttling_failure_count == (1 if code else 0)


def test_a_user_without_a_device_logs_in_with_the_password_alone():
    social_manager(username="sam")
    client = Client()

    response = log_in(client, "sam")

    assert response.status_code == 302
    assert SESSION_KEY in client.session


def test_enrolment_shows_the_secret_and_turns_on_two_factor_once_a_code_confirms_it():
    user = social_manager(username="sam")
    client = Client()
    client.force_login(user)

    page = client.get(ENROL_URL)
    device = TOTPDevice.objects.get(user=user)
    confirmed = client.post(ENROL_URL, {"code": current_code(device)})

    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    assert device.config_url.replace("&", "&amp;") in page.content.decode()
    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert list(TOTPDevice.objects.filter(user=user)) == [device]


def test_a_wrong_code_does_not_turn_on_two_factor():
    user = social_manager(username="sam")
    client = Client()
    client.force_login(user)
    client.get(ENROL_URL)

    response = client.post(ENROL_URL, {"code": "12345a"})

    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert not TOTPDevice.objects.get(user=user).confirmed


def test_when_required_an_admin_without_a_device_is_sent_to_enrolment_first(settings):
    settings.STAFF_2FA_REQUIRED_FOR_ADMINS = True
    admin_user(username="ann")
    client = Client()

    login = log_in(client, "ann")
    index = client.get(reverse("admin:index"))
    members = client.get(reverse("admin:members_member_changelist"))
    enrolment = client.get(ENROL_URL)

    assert login.status_code == 302
    assert (index.status_code, index["Location"]) == (302, ENROL_URL)
    assert (members.status_code, members["Location"]) == (302, ENROL_URL)
    assert enrolment.status_code == 200
    assert "Admins sign in with a code" in enrolment.content.decode()


def test_when_required_an_admin_who_enrols_then_opens_the_admin(settings):
    settings.STAFF_2FA_REQUIRED_FOR_ADMINS = True
    user = admin_user(username="ann")
    client = Client()
    log_in(client, "ann")
    client.get(ENROL_URL)

    client.post(ENROL_URL, {"code": current_code(TOTPDevice.objects.get(user=user))})

    assert client.get(reverse("admin:index")).status_code == 200


def test_when_required_social_managers_are_not_forced(settings):
    settings.STAFF_2FA_REQUIRED_FOR_ADMINS = True
    social_manager(username="sam")
    client = Client()

    log_in(client, "sam")

    assert client.get(reverse("admin:index")).status_code == 200


def test_when_not_required_an_admin_without_a_device_opens_the_admin(settings):
    assert settings.STAFF_2FA_REQUIRED_FOR_ADMINS is False
    admin_user(username="ann")
    client = Client()

    log_in(client, "ann")

    assert client.get(reverse("admin:index")).status_code == 200
