"""``manage.py check_message``: the real twilio SDK asks the fake Twilio for a status."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from delivery.models import Message
from delivery.tests.factories import MessageFactory
from members.models import Suppression
from smsadmin.fakes.twilio import twilio_client_for

pytestmark = pytest.mark.django_db
Status = Message.Status
SENDER = "+15005550006"
UNKNOWN_SID = "SM" + "f" * 32


@pytest.fixture(autouse=True)
def plain_twilio_hosts(monkeypatch):
    # With either set, the SDK rewrites the host name and misses the fake on loopback.
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


def at_twilio(fake, phone: str, *, finished: bool = True) -> str:
    """The SID of a message Twilio has to ``phone``: delivered when ``finished``, else queued."""
    if finished:
        fake.set_rules(status_delay_ms=0)
    sid = twilio_client_for(fake).messages.create(to=phone, from_=SENDER, body="Hi").sid
    if finished:
        assert fake.wait_for_deliveries()
    return sid


def ours(fake, *, status: str = Status.SENT, finished: bool = True) -> Message:
    message = MessageFactory(status=status)
    message.provider_sid = at_twilio(fake, message.phone, finished=finished)
    message.save(update_fields=["provider_sid"])
    return message


def check(*sids: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("check_message", *sids, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_message_delivered_at_twilio_moves_ours_forward(fake_twilio):
    message = ours(fake_twilio)

    out, _ = check(message.provider_sid)

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.delivered_at is not None
    assert out == (
        f"{message.provider_sid}: message #{message.pk} to {message.phone}: "
        "sent → delivered; Twilio says delivered\n"
    )


def test_a_delivered_message_is_not_moved_back_by_an_older_status(fake_twilio):
    message = ours(fake_twilio, status=Status.DELIVERED, finished=False)  # queued at Twilio

    out, _ = check(message.provider_sid)

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert out.endswith(": delivered → delivered (unchanged); Twilio says queued\n")


def test_a_failure_at_twilio_is_recorded_and_feeds_the_suppression_rules(
    fake_twilio, django_capture_on_commit_callbacks
):
    message = MessageFactory(status=Status.SENT)
    fake_twilio.fail_delivery(message.phone, status="undelivered", error_code=30006)
    message.provider_sid = at_twilio(fake_twilio, message.phone)
    message.save(update_fields=["provider_sid"])

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = check(message.provider_sid)

    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.UNDELIVERED, 30006)
    assert out.endswith(": sent → undelivered; Twilio says undelivered, error code 30006\n")
    suppression = Suppression.objects.get()
    assert (suppression.phone, suppression.reason) == (message.phone, "landline")


def test_several_sids_are_checked_at_once(fake_twilio):
    first, second = ours(fake_twilio), ours(fake_twilio, status=Status.ACCEPTED)

    out, _ = check(first.provider_sid, second.provider_sid, first.provider_sid)

    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [first.provider_sid, second.provider_sid]
    assert "accepted → delivered" in lines[1]


def test_a_sid_we_never_stored_is_refused_before_asking_twilio(fake_twilio):
    message = ours(fake_twilio)
    requests_before = len(fake_twilio.requests)

    with pytest.raises(CommandError, match=f"^No message with SID {UNKNOWN_SID}.$"):
        check(message.provider_sid, UNKNOWN_SID)

    assert len(fake_twilio.requests) == requests_before
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_a_sid_twilio_does_not_know_changes_nothing(fake_twilio):
    message = MessageFactory(status=Status.SENT, provider_sid=UNKNOWN_SID)
    out = StringIO()
    err = StringIO()

    with pytest.raises(CommandError, match="1 of 1 messages could not be checked"):
        call_command("check_message", UNKNOWN_SID, stdout=out, stderr=err)

    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"{UNKNOWN_SID}: message #{message.pk} to {message.phone}: "
        "Twilio has no message with this SID; nothing changed.\n"
    )
    (request,) = fake_twilio.requests
    assert (request.method, request.status, request.error_code) == ("GET", 404, 20404)
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.SENT, None)


def test_twilio_unreachable_is_said_and_changes_nothing(fake_twilio, settings):
    message = ours(fake_twilio)
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    err = StringIO()

    with pytest.raises(CommandError, match="1 of 1 messages could not be checked"):
        call_command("check_message", message.provider_sid, stdout=StringIO(), stderr=err)

    assert err.getvalue().startswith(
        f"{message.provider_sid}: message #{message.pk} to {message.phone}: could not ask Twilio ("
    )
    assert err.getvalue().endswith("nothing changed.\n")
    message.refresh_from_db()
    assert message.status == Status.SENT
