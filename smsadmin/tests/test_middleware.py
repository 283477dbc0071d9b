"""Webhooks take the short way; everything else the whole middleware stack."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_webhook_sets_no_cookie_and_still_checks_its_signature(client, settings):
    settings.TWILIO_AUTH_TOKEN = "1" * 32
    response = client.post(reverse("delivery:twilio-status"), {"MessageSid": "SM1"})
    assert response.status_code == 403
    assert response.cookies == {}
    assert "X-Frame-Options" not in response


def test_an_unknown_webhook_path_is_a_plain_404(client):
    assert client.post("/webhooks/twilio/nothing-here").status_code == 404


def test_other_pages_keep_the_whole_stack(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies
