"""Every staff member sets their own phone for test messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from members.models import StaffProfile
from members.tests.factories import admin_user, social_manager

pytestmark = pytest.mark.django_db
URL = reverse("staff-profile")


@pytest.mark.parametrize("make_user", [admin_user, social_manager], ids=["admin", "manager"])
def test_staff_member_saves_their_phone_normalised(client, make_user):
    user = make_user()
    client.force_login(user)
    response = client.post(URL, {"phone": "(415) 555-2671"}, follow=True)
    assert response.status_code == 200
    assert StaffProfile.objects.get(user=user).phone == "+14155552671"


def test_an_invalid_phone_is_refused_and_nothing_saved(client):
    user = social_manager()
    client.force_login(user)
    response = client.post(URL, {"phone": "555-12"})
    assert response.status_code == 200
    assert "Please check the number" in response.text
    assert StaffProfile.objects.get(user=user).phone == ""


def test_the_profile_link_is_on_every_admin_page(client):
    client.force_login(social_manager())
    assert URL in client.get(reverse("admin:index")).text


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
