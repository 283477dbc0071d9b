"""The inbound webhook: signed, idempotent by MessageSid, STOP/START/HELP honoured once,
stop requests in words flagged, and nothing else changed by what a member texts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from delivery.claims import claim_due_messages
from delivery.models import Batch, InboundMessage, Message
from delivery.tests.factories import BatchFactory, MessageFactory
from delivery.webhooks import EMPTY_TWIML
from members.models import Member, OptOut
from members.tests.factories import MemberFactory, OptOutFactory, SuppressionFactory

pytestmark = pytest.mark.django_db
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"
PATH = "/webhooks/twilio/inbound"
PHONE = "+14155552671"
OTHER_PHONE = "+14155552672"
OUR_NUMBER = "+15005550006"
SECOND_NUMBER = "+15005550007"
Action = InboundMessage.Action
Status = Message.Status
STOP_CONFIRMATION = (
    "You're unsubscribed from Garden Club. No more messages. Reply START to resubscribe."
)
START_CONFIRMATION = "You're subscribed to Garden Club again. Reply HELP for help, STOP to opt out."
HELP_TEXT = "Garden Club: community texts. Reply STOP to opt out. Help: hello@garden.example"


@pytest.fixture(autouse=True)
def inbound_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.SMS_SENDERS = [OUR_NUMBER, SECOND_NUMBER]
    settings.SMS_DEFAULT_SENDER = OUR_NUMBER
    settings.ORGANIZATION_NAME = "Garden Club"
    settings.SMS_HELP_TEXT = HELP_TEXT
    settings.TWILIO_ADVANCED_OPT_OUT = False
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = False


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
            return client.post(PATH, data, headers={"X-Twilio-Signature": signature})

    return post


def assert_empty_twiml(response) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode() == EMPTY_TWIML


def replies() -> list[tuple]:
    return list(
        Message.objects.filter(kind=Batch.Kind.REPLY)
        .order_by("id")
        .values_list("phone", "sender", "body", "status", "is_compliance_reply")
    )


def opt_outs() -> list[tuple]:
    return list(
        OptOut.objects.order_by("id").values_list(
            "phone", "source", "reason", "created_by", "lifted_reason"
        )
    )


# --- STOP ------------------------------------------------------------------------------


def test_stop_opts_the_sender_out_and_queues_one_confirmation(webhook, enqueued):
    member = MemberFactory(phone=PHONE)

    response = webhook("STOP", sid="SM" + "1" * 32, NumMedia="1")

    assert_empty_twiml(response)
    inbound = InboundMessage.objects.get()
    assert (inbound.message_sid, inbound.from_phone, inbound.from_raw, inbound.to) == (
        "SM" + "1" * 32,
        PHONE,
        PHONE,
        OUR_NUMBER,
    )
    assert (inbound.body, inbound.num_media, inbound.member) == ("STOP", 1, member)
    assert (inbound.action, inbound.keyword, inbound.is_flagged) == (
        Action.OPTED_OUT,
        "STOP",
        False,
    )
    assert (inbound.is_handled, inbound.handled_by) == (True, None)
    assert inbound.handled_at is not None
    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "")]
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]
    reply = Message.objects.get()
    assert inbound.reply == reply
    assert (reply.batch.kind, reply.batch.sender, reply.segments) == ("reply", OUR_NUMBER, 1)
    assert enqueued == [reply.batch_id]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (" stop ", "STOP"),
        ("Stop.", "STOP"),
        ("STOP!", "STOP"),
        ("stopall", "STOPALL"),
        ("Unsubscribe", "UNSUBSCRIBE"),
        ("cancel", "CANCEL"),
        ("End", "END"),
        ("quit", "QUIT"),
        ("revoke", "REVOKE"),
        ("OptOut", "OPTOUT"),
    ],
)
def test_every_opt_out_keyword_opts_out_with_the_word_as_reason(webhook, body, reason):
    assert_empty_twiml(webhook(body))

    assert opt_outs() == [(PHONE, "keyword", reason, None, "")]
    assert InboundMessage.objects.get().keyword == reason
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("STOP ALL", Action.FLAGGED),  # looks like a stop request: staff decide
        ("stopping by later", Action.NONE),
        ("Stop by the garden!", Action.NONE),
    ],
)
def test_texts_that_only_contain_a_keyword_do_not_opt_out(webhook, body, action):
    webhook(body)

    assert opt_outs() == []
    assert replies() == []
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action) == ("", action)


def test_stop_cancels_every_pending_message_to_that_phone_at_once(webhook):
    campaign = BatchFactory()
    pending = MessageFactory(batch=campaign, phone=PHONE)
    later = MessageFactory(batch=BatchFactory(kind=Batch.Kind.DAILY), phone=PHONE)
    in_flight = MessageFactory(batch=BatchFactory(), phone=PHONE, status=Status.SENDING)
    handed_over = MessageFactory(
        batch=BatchFactory(), phone=PHONE, status=Status.ACCEPTED, provider_sid="SM" + "7" * 32
    )
    someone_else = MessageFactory(batch=campaign, phone=OTHER_PHONE)

    webhook("stop")

    statuses = dict(Message.objects.exclude(kind=Batch.Kind.REPLY).values_list("pk", "status"))
    assert statuses == {
        pending.pk: Status.CANCELED,
        later.pk: Status.CANCELED,
        in_flight.pk: Status.SENDING,
        handed_over.pk: Status.ACCEPTED,
        someone_else.pk: Status.PENDING,
    }
    canceled = Message.objects.get(pk=pending.pk)
    assert canceled.canceled_at is not None
    assert canceled.error_message == "Opted out before it was sent"


def test_a_retried_webhook_has_exactly_one_effect(webhook, enqueued):
    first = webhook("STOP", sid="SM" + "2" * 32)
    second = webhook("STOP", sid="SM" + "2" * 32)

    assert_empty_twiml(first)
    assert_empty_twiml(second)
    assert first.content == second.content
    assert InboundMessage.objects.count() == 1
    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "")]
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]
    assert len(enqueued) == 1


def test_a_retried_webhook_with_a_different_body_changes_nothing(webhook):
    webhook("Hello!", sid="SM" + "3" * 32)
    webhook("STOP", sid="SM" + "3" * 32)

    assert list(InboundMessage.objects.values_list("body", "action")) == [("Hello!", "none")]
    assert opt_outs() == []
    assert replies() == []


def test_an_opted_out_phone_texting_stop_again_changes_nothing_more(webhook, enqueued):
    OptOutFactory(phone=PHONE, source=OptOut.Source.STAFF, reason="Asked at the door")
    before = opt_outs()

    assert_empty_twiml(webhook("STOP"))

    assert opt_outs() == before
    assert replies() == []
    assert enqueued == []
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action, inbound.reply, inbound.is_handled) == (
        "STOP",
        Action.NONE,
        None,
        True,
    )


def test_two_stops_in_a_row_send_one_confirmation(webhook, enqueued):
    webhook("STOP")
    webhook("Stop!")

    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "")]
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]
    assert list(InboundMessage.objects.order_by("id").values_list("action", flat=True)) == [
        Action.OPTED_OUT,
        Action.NONE,
    ]
    assert len(enqueued) == 1


def test_the_reply_comes_from_the_number_they_texted(webhook):
    webhook("STOP", To=SECOND_NUMBER)

    assert replies() == [(PHONE, SECOND_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]


def test_a_number_outside_our_senders_is_answered_from_the_default_sender(webhook):
    webhook("STOP", To="+15005550009")

    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]


def test_a_stop_from_a_number_we_could_never_text_is_still_honoured(webhook):
    london_landline = "+442071838750"

    webhook("STOP", sender=london_landline)

    assert opt_outs() == [(london_landline, "keyword", "STOP", None, "")]
    assert InboundMessage.objects.get().from_phone == london_landline


def test_a_sender_that_is_no_phone_number_is_recorded_and_nothing_else(webhook):
    webhook("STOP", sender="GARDENCLUB")

    inbound = InboundMessage.objects.get()
    assert (inbound.from_phone, inbound.from_raw, inbound.keyword, inbound.action) == (
        "",
        "GARDENCLUB",
        "STOP",
        Action.NONE,
    )
    assert opt_outs() == []
    assert replies() == []


# --- The confirmation and the claim-time opt-out check ----------------------------------


def test_the_stop_confirmation_survives_the_claim_time_opt_out_check(webhook):
    webhook("STOP")
    confirmation = Message.objects.get(kind=Batch.Kind.REPLY)
    staff_reply = MessageFactory(batch=BatchFactory(kind=Batch.Kind.REPLY), phone=PHONE)

    claimed = claim_due_messages(batch_id=confirmation.batch_id, limit=10)
    refused = claim_due_messages(batch_id=staff_reply.batch_id, limit=10)

    assert [message.id for message in claimed] == [confirmation.pk]
    assert refused == []
    assert Message.objects.get(pk=confirmation.pk).status == Status.SENDING
    assert Message.objects.get(pk=staff_reply.pk).status == Status.CANCELED


def test_a_suppressed_phone_gets_no_compliance_reply_either(webhook):
    SuppressionFactory(phone=PHONE)
    webhook("HELP")
    help_reply = Message.objects.get(kind=Batch.Kind.REPLY)

    assert claim_due_messages(batch_id=help_reply.batch_id, limit=10) == []

    help_reply.refresh_from_db()
    assert (help_reply.status, help_reply.error_message) == (
        Status.CANCELED,
        "Suppressed before it was sent",
    )


# --- START and HELP ----------------------------------------------------------------------


def test_stop_then_start_opts_back_in_and_keeps_the_history(webhook, enqueued):
    webhook("STOP")
    webhook("Start")

    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "START keyword")]
    opt_out = OptOut.objects.get()
    assert opt_out.lifted_at is not None
    assert opt_out.lifted_by is None
    assert not OptOut.objects.active().exists()
    assert replies() == [
        (PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True),
        (PHONE, OUR_NUMBER, START_CONFIRMATION, Status.PENDING, False),
    ]
    start = InboundMessage.objects.order_by("id").last()
    assert (start.keyword, start.action, start.is_handled) == ("START", Action.OPTED_IN, True)
    assert len(enqueued) == 2


@pytest.mark.parametrize("body", ["yes", "UNSTOP"])
def test_every_opt_in_keyword_lifts_the_opt_out(webhook, body):
    OptOutFactory(phone=PHONE)

    webhook(body)

    assert not OptOut.objects.active().exists()
    assert replies() == [(PHONE, OUR_NUMBER, START_CONFIRMATION, Status.PENDING, False)]


def test_yes_from_someone_who_never_opted_out_changes_nothing(webhook, enqueued):
    webhook("Yes!")

    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action) == ("YES", Action.NONE)
    assert opt_outs() == []
    assert replies() == []
    assert enqueued == []


@pytest.mark.parametrize("body", ["HELP", "info", " Help? "])
def test_help_replies_with_the_organisations_help_text(webhook, enqueued, body):
    webhook(body)

    inbound = InboundMessage.objects.get()
    assert (inbound.action, inbound.is_handled) == (Action.HELP_SENT, True)
    assert replies() == [(PHONE, OUR_NUMBER, HELP_TEXT, Status.PENDING, True)]
    assert inbound.reply == Message.objects.get()
    assert opt_outs() == []
    assert len(enqueued) == 1


def test_help_reaches_an_opted_out_phone(webhook):
    OptOutFactory(phone=PHONE)

    webhook("HELP")

    help_reply = Message.objects.get(kind=Batch.Kind.REPLY)
    assert [m.id for m in claim_due_messages(batch_id=help_reply.batch_id, limit=5)] == [
        help_reply.pk
    ]
    assert OptOut.objects.active().count() == 1


def _default_help_text(**environment: str) -> str:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ORGANIZATION_", "SMS_HELP_TEXT", "DJANGO_SETTINGS_MODULE"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="smsadmin.settings", DJANGO_ENV="test", **environment)
    loaded = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SMS_HELP_TEXT)"],
        cwd=Path(__file__).resolve().parents[2],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return loaded.stdout.strip()


def test_the_default_help_text_names_the_organisation_and_its_contact():
    assert _default_help_text(
        ORGANIZATION_NAME="Garden Club", ORGANIZATION_CONTACT="hello@garden.example"
    ) == (
        "Garden Club: community texts. Msg frequency varies. Msg & data rates may apply. "
        "Reply STOP to opt out. Help: hello@garden.example"
    )
    assert _default_help_text() == (
        "Our community: community texts. Msg frequency varies. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )


# --- Twilio's Advanced Opt-Out ------------------------------------------------------------


def test_with_advanced_opt_out_keywords_act_but_we_send_no_reply_at_all(
    webhook, enqueued, settings
):
    settings.TWILIO_ADVANCED_OPT_OUT = True

    webhook("STOP")
    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "")]
    webhook("HELP")
    webhook("START")

    assert opt_outs() == [(PHONE, "keyword", "STOP", None, "START keyword")]
    assert list(InboundMessage.objects.order_by("id").values_list("action", "reply")) == [
        (Action.OPTED_OUT, None),
        (Action.HELP_SENT, None),
        (Action.OPTED_IN, None),
    ]
    assert Message.objects.count() == 0
    assert Batch.objects.count() == 0
    assert enqueued == []


@pytest.mark.parametrize(
    ("opt_out_type", "body", "keyword"),
    [("STOP", "ARRET", "ARRET"), ("STOP", "stop", "STOP")],
)
def test_opt_out_type_stop_is_honoured_and_answered_by_twilio_only(
    webhook, enqueued, opt_out_type, body, keyword
):
    webhook(body, OptOutType=opt_out_type)

    assert opt_outs() == [(PHONE, "keyword", keyword, None, "")]
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.action, inbound.reply) == (keyword, Action.OPTED_OUT, None)
    assert Message.objects.count() == 0
    assert enqueued == []


def test_opt_out_type_start_lifts_the_opt_out(webhook):
    OptOutFactory(phone=PHONE)

    webhook("COMMENCER", OptOutType="START")

    assert not OptOut.objects.active().exists()
    assert InboundMessage.objects.get().action == Action.OPTED_IN
    assert Message.objects.count() == 0


def test_opt_out_type_help_is_recorded_without_a_reply_of_ours(webhook):
    webhook("AIDE", OptOutType="HELP")

    assert list(InboundMessage.objects.values_list("keyword", "action")) == [
        ("AIDE", Action.HELP_SENT)
    ]
    assert Message.objects.count() == 0


# --- Stop requests in words and ordinary texts ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["please stop texting me", "unsubscribe me", "Remove me from this list", "don't text me"],
)
def test_a_stop_request_in_words_is_flagged_for_staff_and_changes_nothing(webhook, enqueued, body):
    pending = MessageFactory(phone=PHONE)

    webhook(body)

    inbound = InboundMessage.objects.get()
    assert (inbound.is_flagged, inbound.action, inbound.keyword) == (True, Action.FLAGGED, "")
    assert (inbound.is_handled, inbound.reply) == (False, None)
    assert opt_outs() == []
    assert replies() == []
    assert Message.objects.get(pk=pending.pk).status == Status.PENDING
    assert enqueued == []


def test_with_auto_opt_out_a_stop_request_opts_out_and_confirms(webhook, enqueued, settings):
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = True
    pending = MessageFactory(phone=PHONE)

    webhook("Please  stop texting me!!")

    assert opt_outs() == [
        (PHONE, "keyword", "Asked to stop: Please stop texting me!!", None, ""),
    ]
    inbound = InboundMessage.objects.get()
    assert (inbound.is_flagged, inbound.action, inbound.is_handled) == (
        True,
        Action.OPTED_OUT,
        True,
    )
    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]
    assert inbound.reply == Message.objects.get(kind=Batch.Kind.REPLY)
    assert Message.objects.get(pk=pending.pk).status == Status.CANCELED
    assert len(enqueued) == 1


def test_with_auto_opt_out_an_opted_out_sender_gets_nothing_more(webhook, settings):
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = True
    OptOutFactory(phone=PHONE)
    before = opt_outs()

    webhook("please stop texting me")

    assert opt_outs() == before
    assert replies() == []
    inbound = InboundMessage.objects.get()
    assert (inbound.action, inbound.is_handled) == (Action.FLAGGED, True)


def test_with_auto_opt_out_our_confirmation_goes_out_even_under_advanced_opt_out(webhook, settings):
    # Twilio only answers keywords: a stop request in words gets no answer from it.
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = True
    settings.TWILIO_ADVANCED_OPT_OUT = True

    webhook("unsubscribe me")

    assert replies() == [(PHONE, OUR_NUMBER, STOP_CONFIRMATION, Status.PENDING, True)]


def test_an_ordinary_text_is_recorded_linked_to_the_member_and_changes_nothing(webhook, enqueued):
    member = MemberFactory(phone=PHONE, first_name="Ada", is_daily_subscriber=False)
    pending = MessageFactory(phone=PHONE)
    before = list(Member.objects.values())

    assert_empty_twiml(webhook("Is the picnic still on? Can I bring a friend?"))

    inbound = InboundMessage.objects.get()
    assert (inbound.member, inbound.action, inbound.keyword) == (member, Action.NONE, "")
    assert (inbound.is_flagged, inbound.is_handled, inbound.reply) == (False, False, None)
    assert list(Member.objects.values()) == before
    assert opt_outs() == []
    assert Message.objects.get(pk=pending.pk).status == Status.PENDING
    assert Message.objects.count() == 1
    assert enqueued == []


def test_a_text_from_someone_unknown_has_no_member(webhook):
    MemberFactory(phone=OTHER_PHONE)

    webhook("Hi, who is this?")

    assert InboundMessage.objects.get().member is None


# --- The door: signatures and form fields ------------------------------------------------------


def nothing_changed() -> bool:
    return not (
        InboundMessage.objects.exists() or OptOut.objects.exists() or Message.objects.exists()
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}],
    ids=["missing", "wrong"],
)
def test_missing_or_wrong_signature_is_refused_and_changes_nothing(client, headers):
    data = {"MessageSid": "SM" + "4" * 32, "From": PHONE, "To": OUR_NUMBER, "Body": "STOP"}

    response = client.post(PATH, data, headers=headers)

    assert response.status_code == 403
    assert nothing_changed()


def test_a_signature_from_another_token_is_refused(client):
    data = {"MessageSid": "SM" + "4" * 32, "From": PHONE, "To": OUR_NUMBER, "Body": "STOP"}
    signature = RequestValidator("f" * 32).compute_signature(PUBLIC + PATH, data)

    response = client.post(PATH, data, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert nothing_changed()


def test_a_signature_over_other_fields_is_refused(client):
    signed = {"MessageSid": "SM" + "4" * 32, "From": PHONE, "To": OUR_NUMBER, "Body": "Hi"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, signed)

    response = client.post(
        PATH, {**signed, "Body": "STOP"}, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403
    assert nothing_changed()


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_missing_fields_are_a_clear_400(webhook, missing):
    response = webhook("STOP", **{missing: ""})

    assert response.status_code == 400
    assert b"MessageSid and From are required" in response.content
    assert nothing_changed()


def test_get_is_not_allowed(client):
    assert client.get(PATH).status_code == 405
