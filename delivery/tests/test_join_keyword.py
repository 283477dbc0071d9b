"""JOIN (or DAILY): texting the join keyword subscribes the phone to the daily message and
confirms it once; STOP and START keep their meaning, and an opted-out phone stays opted
out."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from twilio.request_validator import RequestValidator

from delivery.inbound import IncomingText, receive_text
from delivery.models import Batch, InboundMessage, Message
from members.models import Member, OptOut
from members.services import subscribe_daily
from members.tests.factories import MemberFactory, OptOutFactory

pytestmark = pytest.mark.django_db
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"
PATH = "/webhooks/twilio/inbound"
PHONE = "+14155552671"
OUR_NUMBER = "+15005550006"
NOW = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
CONFIRMATION = (
    "Garden Club: you're subscribed to our daily positive message, 1 msg/day. "
    "Msg & data rates may apply. Reply HELP for help, STOP to cancel."
)
START_CONFIRMATION = "You're subscribed to Garden Club again. Reply HELP for help, STOP to opt out."
STOP_CONFIRMATION = (
    "You're unsubscribed from Garden Club. No more messages. Reply START to resubscribe."
)
Action = InboundMessage.Action
Status = Message.Status


@pytest.fixture(autouse=True)
def inbound_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.SMS_SENDERS = [OUR_NUMBER]
    settings.SMS_DEFAULT_SENDER = OUR_NUMBER
    settings.ORGANIZATION_NAME = "Garden Club"
    settings.TWILIO_ADVANCED_OPT_OUT = False
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = False
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["JOIN", "DAILY"]
    settings.DAILY_MESSAGE_CONFIRMATION = CONFIRMATION


@pytest.fixture
def webhook(client, django_capture_on_commit_callbacks, enqueued):
    """Post a text to the webhook as Twilio would, signed; after-commit work runs."""
    counter = iter(range(1, 1_000_000))

    def post(body: str, *, sid: str | None = None, sender: str = PHONE, **fields: str):
        data = {
            "MessageSid": sid or f"SM{next(counter):032d}",
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": OUR_NUMBER,
            "Body": body,
            "NumMedia": "0",
            **fields,
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, data)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(PATH, data, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200
        return response

    return post


def replies() -> list[tuple]:
    return list(
        Message.objects.filter(kind=Batch.Kind.REPLY)
        .order_by("id")
        .values_list("phone", "sender", "body", "status", "is_compliance_reply")
    )


def members() -> list[tuple]:
    return list(
        Member.objects.order_by("id").values_list(
            "phone", "is_community", "is_daily_subscriber", "daily_confirmed_at"
        )
    )


def inbound_rows() -> list[tuple]:
    return list(
        InboundMessage.objects.order_by("id").values_list("keyword", "action", "is_handled")
    )


def active_opt_outs() -> list[str]:
    return list(OptOut.objects.active().values_list("phone", flat=True))


# --- JOIN ------------------------------------------------------------------------------------


def test_join_from_an_unknown_phone_creates_a_non_community_subscriber_and_confirms_once(
    webhook, enqueued, time_machine
):
    time_machine.move_to(NOW, tick=False)

    webhook("JOIN")

    assert members() == [(PHONE, False, True, NOW)]
    member = Member.objects.get()
    assert member.number_timezones == ["America/Los_Angeles"]
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action, inbound.member) == ("JOIN", Action.JOINED, member)
    assert (inbound.is_handled, inbound.handled_by, inbound.is_flagged) == (True, None, False)
    assert inbound.reply == Message.objects.get()
    assert enqueued == [inbound.reply.batch_id]
    assert OptOut.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("join", "JOIN"),
        ("Daily", "DAILY"),
        ("DAILY", "DAILY"),
        (" Join! ", "JOIN"),
        ("daily.", "DAILY"),
    ],
)
def test_every_join_word_in_any_case_and_punctuation_subscribes(webhook, body, keyword):
    webhook(body)

    assert [(phone, subscriber) for phone, _, subscriber, _ in members()] == [(PHONE, True)]
    assert inbound_rows() == [(keyword, Action.JOINED, True)]
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]


@pytest.mark.parametrize("body", ["I'd like to join the picnic", "join us", "daily?!  please"])
def test_a_join_word_inside_a_sentence_is_an_ordinary_text(webhook, enqueued, body):
    webhook(body)

    assert members() == []
    assert inbound_rows() == [("", Action.NONE, False)]
    assert replies() == []
    assert enqueued == []


def test_the_join_words_are_the_ones_configured(webhook):
    with override_settings(DAILY_MESSAGE_JOIN_KEYWORDS=["SUNSHINE", "POSITIVE"]):
        webhook("Sunshine!")
        webhook("join")

    assert [(phone, subscriber) for phone, _, subscriber, _ in members()] == [(PHONE, True)]
    assert inbound_rows() == [("SUNSHINE", Action.JOINED, True), ("", Action.NONE, False)]
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]


def test_join_from_a_community_member_subscribes_them_and_changes_nothing_else(
    webhook, time_machine
):
    member = MemberFactory(phone=PHONE, first_name="Ada", is_community=True)
    before = Member.objects.values().get()
    time_machine.move_to(NOW, tick=False)

    webhook("JOIN")

    after = Member.objects.values().get()
    assert after == {
        **before,
        "is_daily_subscriber": True,
        "daily_confirmed_at": NOW,
        "updated_at": NOW,
    }
    assert InboundMessage.objects.get().member == member
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]


def test_a_confirmed_subscriber_texting_join_gets_no_second_confirmation(webhook, enqueued):
    confirmed_at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    MemberFactory(phone=PHONE, is_daily_subscriber=True, daily_confirmed_at=confirmed_at)
    before = list(Member.objects.values())

    webhook("JOIN")

    assert list(Member.objects.values()) == before
    assert inbound_rows() == [("JOIN", Action.JOINED, True)]
    assert InboundMessage.objects.get().reply is None
    assert Message.objects.count() == 0
    assert enqueued == []


def test_a_subscriber_never_confirmed_gets_the_confirmation_once(webhook, enqueued, time_machine):
    MemberFactory(phone=PHONE, is_community=True, is_daily_subscriber=True)
    time_machine.move_to(NOW, tick=False)

    webhook("JOIN")
    webhook("Daily")

    assert members() == [(PHONE, True, True, NOW)]
    assert inbound_rows() == [("JOIN", Action.JOINED, True), ("DAILY", Action.JOINED, True)]
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]
    assert len(enqueued) == 1


def test_an_opted_out_phone_is_subscribed_but_told_nothing_and_stays_opted_out(webhook, enqueued):
    opt_out = OptOutFactory(phone=PHONE, reason="STOP")

    webhook("JOIN")

    assert members() == [(PHONE, False, True, None)]
    assert active_opt_outs() == [PHONE]
    opt_out.refresh_from_db()
    assert (opt_out.lifted_at, opt_out.lifted_reason) == (None, "")
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action, inbound.reply) == ("JOIN", Action.JOINED, None)
    assert inbound.member == Member.objects.get()
    assert Message.objects.count() == 0
    assert Batch.objects.count() == 0
    assert enqueued == []


def test_a_retried_join_webhook_sends_one_confirmation(webhook, enqueued):
    webhook("JOIN", sid="SM" + "5" * 32)
    webhook("JOIN", sid="SM" + "5" * 32)

    assert InboundMessage.objects.count() == 1
    assert [(phone, subscriber) for phone, _, subscriber, _ in members()] == [(PHONE, True)]
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]
    assert len(enqueued) == 1


def test_the_join_confirmation_is_ours_even_under_advanced_opt_out(webhook, settings):
    # Twilio's Advanced Opt-Out answers only STOP, START and HELP.
    settings.TWILIO_ADVANCED_OPT_OUT = True

    webhook("JOIN")

    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]
    assert InboundMessage.objects.get().action == Action.JOINED


def test_join_from_a_number_we_could_never_text_subscribes_nothing(webhook, enqueued):
    london_landline = "+442071838750"

    webhook("JOIN", sender=london_landline)

    assert members() == []
    assert list(InboundMessage.objects.values_list("from_phone", "keyword", "action")) == [
        (london_landline, "JOIN", Action.NONE)
    ]
    assert Message.objects.count() == 0
    assert enqueued == []


@override_settings(DAILY_MESSAGE_JOIN_KEYWORDS=["JOIN", "STOP", "END"])
@pytest.mark.parametrize(("body", "keyword"), [("stop", "STOP"), ("End", "END")])
def test_join_words_that_are_stop_words_stay_stop(webhook, body, keyword):
    webhook(body)

    assert members() == []
    assert active_opt_outs() == [PHONE]
    assert inbound_rows() == [(keyword, Action.OPTED_OUT, True)]
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]


# --- START and STOP keep their meaning ------------------------------------------------------------


def test_stop_then_start_keeps_the_daily_subscription(webhook):
    confirmed_at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    MemberFactory(
        phone=PHONE, is_community=False, is_daily_subscriber=True, daily_confirmed_at=confirmed_at
    )

    webhook("STOP")
    assert members() == [(PHONE, False, True, confirmed_at)]
    assert active_opt_outs() == [PHONE]
    webhook("START")

    assert members() == [(PHONE, False, True, confirmed_at)]
    assert active_opt_outs() == []
    assert inbound_rows() == [("STOP", Action.OPTED_OUT, True), ("START", Action.OPTED_IN, True)]
    assert [row[2] for row in replies()] == [STOP_CONFIRMATION, START_CONFIRMATION]


def test_start_from_a_non_subscriber_does_not_subscribe(webhook):
    MemberFactory(phone=PHONE, is_community=True, is_daily_subscriber=False)
    OptOutFactory(phone=PHONE)
    before = list(Member.objects.values())

    webhook("START")

    assert list(Member.objects.values()) == before
    assert active_opt_outs() == []
    assert [row[2] for row in replies()] == [START_CONFIRMATION]


def test_start_from_an_unknown_phone_creates_no_member(webhook):
    OptOutFactory(phone=PHONE)

    webhook("START")

    assert members() == []
    assert active_opt_outs() == []


def test_join_while_opted_out_then_start_resumes_the_subscription_without_a_join_reply(webhook):
    OptOutFactory(phone=PHONE)

    webhook("JOIN")
    webhook("START")

    assert members() == [(PHONE, False, True, None)]
    assert active_opt_outs() == []
    assert inbound_rows() == [("JOIN", Action.JOINED, True), ("START", Action.OPTED_IN, True)]
    assert [row[2] for row in replies()] == [START_CONFIRMATION]


# --- subscribe_daily ---------------------------------------------------------------------------


def test_subscribe_daily_says_whether_the_member_was_newly_subscribed():
    existing = MemberFactory(phone=PHONE, is_daily_subscriber=False)

    first = subscribe_daily(phone=PHONE)
    again = subscribe_daily(phone=PHONE)

    assert first == (existing, True)
    assert again == (existing, False)
    assert members() == [(PHONE, True, True, None)]


def _backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_joins_from_an_unknown_phone_make_one_member_and_one_confirmation(
    enqueued,
):
    first_joined = threading.Event()
    first_may_commit = threading.Event()

    def text(sid: str) -> IncomingText:
        return IncomingText(message_sid=sid, from_raw=PHONE, to=OUR_NUMBER, body="JOIN")

    def first() -> None:
        try:
            with transaction.atomic():
                receive_text(text=text("SM" + "1" * 32))
                first_joined.set()
                first_may_commit.wait(timeout=10)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            # Does not see the first's uncommitted member, so it waits on the unique phone.
            receive_text(text=text("SM" + "2" * 32))
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=first)
    second_thread = threading.Thread(target=second)
    first_thread.start()
    assert first_joined.wait(timeout=10)
    second_thread.start()
    deadline = time.monotonic() + 10
    while not (second_waited := _backend_waits_on_a_lock()) and time.monotonic() < deadline:
        time.sleep(0.01)
    first_may_commit.set()
    first_thread.join(timeout=10)
    second_thread.join(timeout=10)

    assert second_waited
    assert [(phone, subscriber) for phone, _, subscriber, _ in members()] == [(PHONE, True)]
    assert inbound_rows() == [("JOIN", Action.JOINED, True), ("JOIN", Action.JOINED, True)]
    assert (
        list(InboundMessage.objects.values_list("member", flat=True))
        == [Member.objects.get().pk] * 2
    )
    assert replies() == [(PHONE, OUR_NUMBER, CONFIRMATION, Status.PENDING, False)]
    assert len(enqueued) == 1
