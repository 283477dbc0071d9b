"""The two-way inbox: staff read texts, reply through the pipeline, mark them handled and
opt out the senders of flagged ones."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delivery.models import Batch, InboundMessage, Message
from members.models import OptOut
from members.tests.factories import MemberFactory, OptOutFactory, UserFactory, social_manager

pytestmark = pytest.mark.django_db
PHONE = "+14155552671"
OTHER_PHONE = "+14155552672"
OUR_NUMBER = "+15005550006"
CHANGELIST = reverse("admin:delivery_inboundmessage_changelist")
STOP_CONFIRMATION = (
    "You're unsubscribed from Garden Club. No more messages. Reply START to resubscribe."
)
_sids = count(1)


@pytest.fixture(autouse=True)
def inbox_settings(settings):
    settings.SMS_SENDERS = [OUR_NUMBER]
    settings.SMS_DEFAULT_SENDER = OUR_NUMBER
    settings.ORGANIZATION_NAME = "Garden Club"


@pytest.fixture
def manager():
    return social_manager(username="manager")


@pytest.fixture
def staff_client(manager, django_capture_on_commit_callbacks, enqueued):
    """A Social manager's browser; work enqueued after commit is recorded."""
    client = Client()
    client.force_login(manager)

    def post(url: str, data: dict) -> object:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data, follow=True)

    client.post_and_commit = post  # type: ignore[attr-defined]
    return client


def text(body: str = "Is the picnic still on?", *, phone: str = PHONE, **fields) -> InboundMessage:
    fields.setdefault("received_at", timezone.now())
    return InboundMessage.objects.create(
        message_sid=f"SM{next(_sids):032d}",
        from_phone=phone,
        from_raw=phone,
        to=OUR_NUMBER,
        body=body,
        **fields,
    )


def change_url(inbound: InboundMessage) -> str:
    return reverse("admin:delivery_inboundmessage_change", args=[inbound.pk])


def listed(response) -> list[int]:
    return [inbound.pk for inbound in response.context["cl"].result_list]


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def record(inbound: InboundMessage) -> dict:
    return InboundMessage.objects.filter(pk=inbound.pk).values().get()


# --- Reading ---------------------------------------------------------------------------------


def test_the_inbox_lists_the_newest_first_with_the_member_linked(staff_client):
    now = timezone.now()
    member = MemberFactory(phone=PHONE, first_name="Ada", last_name="Lovelace")
    oldest = text("first", received_at=now - timedelta(hours=2), member=member)
    newest = text("third", received_at=now)
    middle = text("second", received_at=now - timedelta(hours=1), phone=OTHER_PHONE)

    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == [newest.pk, middle.pk, oldest.pk]
    member_url = reverse("admin:members_member_change", args=[member.pk])
    assert f'<a href="{member_url}">Ada Lovelace ({PHONE})</a>' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"is_handled__exact": "0"}, ["unhandled", "flagged"]),
        ({"is_flagged__exact": "1"}, ["flagged"]),
        ({"action__exact": "opted_out"}, ["stop"]),
    ],
    ids=["unhandled", "flagged", "opt-outs"],
)
def test_filters_find_unhandled_flagged_and_opt_outs(staff_client, query, expected):
    now = timezone.now()
    texts = {
        "unhandled": text("hello", received_at=now - timedelta(minutes=3)),
        "flagged": text(
            "please stop texting me",
            is_flagged=True,
            action=InboundMessage.Action.FLAGGED,
            received_at=now - timedelta(minutes=2),
        ),
        "stop": text(
            "STOP",
            keyword="STOP",
            action=InboundMessage.Action.OPTED_OUT,
            is_handled=True,
            received_at=now - timedelta(minutes=1),
        ),
    }

    response = staff_client.get(CHANGELIST, query)

    assert sorted(listed(response)) == sorted(texts[name].pk for name in expected)


@pytest.mark.parametrize("term", ["(415) 555-2671", "415.555.2671", "+1 415 555 2671"])
def test_search_by_phone_in_any_format_matches_exactly(staff_client, term):
    mine = text(phone=PHONE)
    text(phone=OTHER_PHONE)
    text(f"my number is {PHONE}", phone="+14155552673")

    response = staff_client.get(CHANGELIST, {"q": term})

    assert listed(response) == [mine.pk]


def test_search_by_words_of_the_text(staff_client):
    picnic = text("Is the PICNIC still on?")
    text("See you Saturday")

    response = staff_client.get(CHANGELIST, {"q": "picnic"})

    assert listed(response) == [picnic.pk]


def test_nobody_adds_texts_by_hand(staff_client):
    assert staff_client.get(reverse("admin:delivery_inboundmessage_add")).status_code == 403


# --- Replying and marking handled ---------------------------------------------------------------


def test_a_reply_is_sent_through_the_normal_pipeline_and_marks_the_text_handled(
    staff_client, manager, enqueued
):
    inbound = text()

    response = staff_client.post_and_commit(
        change_url(inbound), {"reply_text": "  Yes, noon at the park!  ", "_save": "Save"}
    )

    assert response.status_code == 200
    assert f"Reply to {PHONE} queued." in shown_messages(response)
    reply = Message.objects.get()
    assert (reply.kind, reply.batch.kind, reply.phone, reply.sender, reply.body) == (
        Batch.Kind.REPLY,
        Batch.Kind.REPLY,
        PHONE,
        OUR_NUMBER,
        "Yes, noon at the park!",
    )
    assert (reply.status, reply.is_compliance_reply) == (Message.Status.PENDING, False)
    inbound.refresh_from_db()
    assert (inbound.reply, inbound.is_handled, inbound.handled_by) == (reply, True, manager)
    assert inbound.action == InboundMessage.Action.NONE
    assert enqueued == [reply.batch_id]


def test_replying_to_an_opted_out_phone_is_refused_with_a_clear_message(staff_client, enqueued):
    OptOutFactory(phone=PHONE)
    inbound = text()
    before = record(inbound)

    response = staff_client.post_and_commit(
        change_url(inbound), {"reply_text": "Are you sure?", "_save": "Save"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "reply_text": [f"{PHONE} has opted out: no reply can be sent unless they text START."]
    }
    assert Message.objects.count() == 0
    assert record(inbound) == before
    assert enqueued == []


def test_the_page_says_when_the_sender_may_not_be_texted(staff_client):
    OptOutFactory(phone=PHONE)

    response = staff_client.get(change_url(text()))

    assert f"{PHONE} has opted out: no reply can be sent unless they text START." in (
        response.content.decode()
    )


def test_mark_handled_on_the_page(staff_client, manager):
    inbound = text()

    staff_client.post_and_commit(change_url(inbound), {"mark_as_handled": "on", "_save": "Save"})

    inbound.refresh_from_db()
    assert (inbound.is_handled, inbound.handled_by) == (True, manager)
    assert inbound.handled_at is not None
    assert Message.objects.count() == 0


def test_saving_the_page_without_an_action_changes_nothing(staff_client):
    inbound = text()
    before = record(inbound)

    staff_client.post_and_commit(change_url(inbound), {"_save": "Save"})

    assert record(inbound) == before
    assert Message.objects.count() == 0


def test_mark_handled_action_keeps_who_handled_a_text_first(staff_client, manager):
    colleague = UserFactory(username="colleague")
    earlier = timezone.now() - timedelta(days=1)
    open_text = text()
    done = text(is_handled=True, handled_at=earlier, handled_by=colleague)

    response = staff_client.post_and_commit(
        CHANGELIST,
        {"action": "mark_selected_handled", ACTION_CHECKBOX_NAME: [open_text.pk, done.pk]},
    )

    assert shown_messages(response) == ["Marked 1 text(s) handled."]
    open_text.refresh_from_db()
    done.refresh_from_db()
    assert (open_text.is_handled, open_text.handled_by) == (True, manager)
    assert (done.handled_at, done.handled_by) == (earlier, colleague)


# --- Opting out flagged senders -----------------------------------------------------------------


def test_opt_out_action_opts_out_flagged_senders_and_confirms_once_each(
    staff_client, manager, enqueued
):
    flagged = text("please stop texting me", is_flagged=True, action="flagged")
    flagged_again = text("remove me from this list", is_flagged=True, action="flagged")
    other = text("unsubscribe me", phone=OTHER_PHONE, is_flagged=True, action="flagged")
    ordinary = text("Is the picnic still on?", phone="+14155552673")
    ordinary_before = record(ordinary)

    response = staff_client.post_and_commit(
        CHANGELIST,
        {
            "action": "opt_out_selected",
            ACTION_CHECKBOX_NAME: [flagged.pk, flagged_again.pk, other.pk, ordinary.pk],
        },
    )

    assert shown_messages(response) == [
        "Opted out 2 number(s).",
        "Left 1 text(s) alone: only flagged texts opt their sender out here.",
    ]
    assert list(
        OptOut.objects.order_by("phone").values_list("phone", "source", "reason", "created_by")
    ) == [
        (PHONE, "staff", "Asked to stop: please stop texting me", manager.pk),
        (OTHER_PHONE, "staff", "Asked to stop: unsubscribe me", manager.pk),
    ]
    assert list(
        Message.objects.order_by("phone").values_list("phone", "body", "is_compliance_reply")
    ) == [(PHONE, STOP_CONFIRMATION, True), (OTHER_PHONE, STOP_CONFIRMATION, True)]
    assert len(enqueued) == 2
    for inbound in (flagged, flagged_again, other):
        inbound.refresh_from_db()
        assert (inbound.is_handled, inbound.handled_by) == (True, manager)
    assert (flagged.action, flagged_again.action) == ("opted_out", "flagged")
    assert record(ordinary) == ordinary_before


def test_opt_out_action_cancels_what_waits_to_be_sent(staff_client):
    from delivery.tests.factories import MessageFactory

    pending = MessageFactory(phone=PHONE)
    flagged = text("don't text me", is_flagged=True, action="flagged")

    staff_client.post_and_commit(
        CHANGELIST, {"action": "opt_out_selected", ACTION_CHECKBOX_NAME: [flagged.pk]}
    )

    pending.refresh_from_db()
    assert pending.status == Message.Status.CANCELED


def test_opt_out_action_leaves_an_already_opted_out_phone_alone(staff_client):
    existing = OptOutFactory(phone=PHONE)
    flagged = text("please stop texting me", is_flagged=True, action="flagged")

    response = staff_client.post_and_commit(
        CHANGELIST, {"action": "opt_out_selected", ACTION_CHECKBOX_NAME: [flagged.pk]}
    )

    assert shown_messages(response) == ["Opted out 0 number(s)."]
    assert list(OptOut.objects.values_list("pk", flat=True)) == [existing.pk]
    assert Message.objects.count() == 0


# --- Who may do what ------------------------------------------------------------------------------


def test_a_viewer_without_change_permission_sees_no_reply_form_and_cannot_post():
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_inboundmessage", content_type__app_label="delivery")
    )
    client = Client()
    client.force_login(viewer)
    inbound = text()

    page = client.get(change_url(inbound))
    response = client.post(change_url(inbound), {"reply_text": "Hello", "_save": "Save"})

    assert page.status_code == 200
    assert "reply_text" not in page.content.decode()
    assert response.status_code == 403
    assert Message.objects.count() == 0
    listing = client.get(CHANGELIST)
    assert listing.context["action_form"] is None  # no action is offered to a viewer
