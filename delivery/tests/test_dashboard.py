"""The dashboard on the admin index: messages per day, delivery rate, failures, campaigns."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from delivery.models import Batch, Message
from delivery.selectors import batch_progress
from delivery.tests.factories import BatchFactory, MessageFactory
from members.roles import ADMIN, SOCIAL_MANAGER
from members.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

Status = Message.Status
# 13:00 in New York (UTC-4 since the 8th): "today" there is the 12th.
NOW = datetime(2026, 3, 12, 17, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def new_york_clock(settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(NOW, tick=False):
        yield


def client_as(role: str | None) -> Client:
    client = Client()
    client.force_login(UserFactory(username=f"user-{role or 'no-role'}", role=role))
    return client


def make_messages(batch: Batch, when: datetime, status: str, count: int = 1, **fields) -> None:
    MessageFactory.create_batch(count, batch=batch, created_at=when, status=status, **fields)


@pytest.fixture
def known_messages() -> None:
    """Oldest first, as the sending pipeline writes them (ids grow with created_at)."""
    batch = BatchFactory(kind=Batch.Kind.API)
    make_messages(batch, NOW - timedelta(days=20), Status.DELIVERED, 5)  # before the chart
    ten_days_ago = NOW - timedelta(days=10)
    make_messages(batch, ten_days_ago, Status.DELIVERED, 4)
    make_messages(batch, ten_days_ago, Status.FAILED, 2, error_code=21211)  # before the week
    yesterday = NOW - timedelta(days=1)
    make_messages(batch, yesterday, Status.DELIVERED)
    make_messages(batch, yesterday, Status.SENT)
    make_messages(batch, yesterday, Status.ACCEPTED)
    make_messages(batch, yesterday, Status.CANCELED)
    make_messages(batch, yesterday, Status.UNDELIVERED, error_code=30007)
    # 22:30 on the 11th in New York, though already the 12th in UTC.
    make_messages(batch, datetime(2026, 3, 12, 2, 30, tzinfo=UTC), Status.DELIVERED)
    today = NOW - timedelta(hours=2)
    make_messages(batch, today, Status.DELIVERED, 3)
    make_messages(batch, today, Status.FAILED, error_code=30003)
    make_messages(batch, today, Status.PENDING)


def day_row(content: str, day: str) -> list[str]:
    row = re.search(rf'<tr data-day="{day}">(.*?)</tr>', content, re.S)
    assert row, f"no row for {day}"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def test_index_shows_messages_per_day_by_status(known_messages) -> None:
    response = client_as(ADMIN).get(reverse("admin:index"))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="sms-dashboard"' in content
    days = response.context["dashboard"].days
    assert [day.day.isoformat() for day in (days[0], days[-1])] == ["2026-02-27", "2026-03-12"]
    # Delivered, sent or accepted, failed or undelivered, canceled, pending; total; rate.
    assert day_row(content, "2026-03-12") == ["3", "0", "1", "0", "1", "5", "75.0%"]
    assert day_row(content, "2026-03-11") == ["2", "2", "1", "1", "0", "6", "66.7%"]
    assert day_row(content, "2026-03-02") == ["4", "0", "2", "0", "0", "6", "66.7%"]
    assert day_row(content, "2026-03-10") == ["0", "0", "0", "0", "0", "0", "—"]
    assert "2026-02-20" not in content
    assert (
        "Thursday 12 March: 5 messages (3 delivered, 1 failed or undelivered, 1 pending" in content
    )
    for label in ("Delivered", "Sent or accepted", "Failed or undelivered", "Canceled"):
        assert f"</svg> {label}</li>" in content  # the legend


def test_index_shows_the_delivery_rate_of_today_and_of_the_week(known_messages) -> None:
    content = client_as(ADMIN).get(reverse("admin:index")).content.decode()

    assert '<span class="sms-dashboard-number" id="delivery-rate-today">75.0%</span>' in content
    # 5 delivered out of 7 reported since the 6th; the 2nd is before the week.
    assert '<span class="sms-dashboard-number" id="delivery-rate-week">71.4%</span>' in content
    assert "Wed 11: 66.7%" in content  # the sparkline's text alternative
    assert content.count('class="sms-sparkline-point"') == 2  # days without reports: no point


def test_index_shows_the_week_s_top_failure_reasons_with_their_description(
    known_messages,
) -> None:
    response = client_as(ADMIN).get(reverse("admin:index"))

    failures = [
        (failure.code, failure.reason, failure.count)
        for failure in response.context["dashboard"].failures
    ]
    assert failures == [
        (30003, "The phone is off or out of coverage", 1),
        (30007, "The carrier filtered the message as spam", 1),
    ]
    content = response.content.decode()
    assert "<td>The carrier filtered the message as spam</td>" in content
    assert 'data-code="21211"' not in content  # ten days ago


def test_index_shows_campaigns_in_progress_with_their_percent_and_link() -> None:
    batch = BatchFactory()
    make_messages(batch, NOW, Status.DELIVERED, 2)
    make_messages(batch, NOW, Status.FAILED)
    make_messages(batch, NOW, Status.PENDING)
    sending = Campaign.objects.create(name="Spring news", body="Hi!", state="sending", batch=batch)
    Campaign.objects.create(
        name="Summer fair", body="Hi!", state="scheduled", send_at=NOW + timedelta(days=2)
    )
    Campaign.objects.create(name="Draft idea", body="Hi!")

    response = client_as(SOCIAL_MANAGER).get(reverse("admin:index"))

    shown = [(c.name, c.percent) for c in response.context["campaigns_in_progress"]]
    assert shown == [("Spring news", 75), ("Summer fair", None)]
    assert batch_progress(batch).percent == 75
    content = response.content.decode()
    url = reverse("admin:campaigns_campaign_change", args=[sending.pk])
    assert f'<a href="{url}">Spring news</a>' in content
    assert '<progress max="100" value="75"' in content
    assert "Draft idea" not in content


def test_a_social_manager_sees_the_dashboard(known_messages) -> None:
    response = client_as(SOCIAL_MANAGER).get(reverse("admin:index"))

    assert 'id="sms-dashboard"' in response.content.decode()
    assert 'id="dashboard-campaigns"' in response.content.decode()


def test_staff_who_may_not_view_messages_see_the_plain_index(known_messages) -> None:
    response = client_as(None).get(reverse("admin:index"))

    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert "sms-dashboard" not in response.content.decode()
    assert "delivery/dashboard.css" not in response.content.decode()


def test_an_empty_database_renders_the_dashboard() -> None:
    response = client_as(ADMIN).get(reverse("admin:index"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "No messages in the last 14 days" in content
    assert 'id="delivery-rate-today">—</span>' in content
    assert "No failed or undelivered messages in the last 7 days." in content
    assert "No campaign is sending or scheduled." in content


def test_the_dashboard_costs_the_same_few_queries_however_many_campaigns(
    known_messages, django_assert_max_num_queries
) -> None:
    client = client_as(ADMIN)
    for number in range(8):
        batch = BatchFactory()
        make_messages(batch, NOW, Status.DELIVERED, 2)
        Campaign.objects.create(name=f"Campaign {number}", body="Hi!", state="sending", batch=batch)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:index"))

    assert len(response.context["campaigns_in_progress"]) == 6
    assert response.context["campaigns_left_out"] == 2
