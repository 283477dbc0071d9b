"""Texts people send us: record each once, honour STOP/START/HELP and JOIN, flag stop
requests.

Twilio retries a webhook it did not hear back from, so a text is identified by its
``MessageSid``: the first delivery inserts the row (the unique index serialises two
deliveries that race) and acts in the same transaction; a repeat finds the row and does
nothing. A crash part-way rolls everything back, so the retry acts in full.

Our answers (STOP, START and JOIN confirmations, the help text, staff replies) are ordinary
messages in a REPLY batch: rate-limited, checked against opt-outs when claimed, and
tracked like any other. When Twilio's Advanced Opt-Out answers keywords itself we stay
silent, or the member would get two answers (and ours would fail with 21610). Twilio
never answers JOIN, so its confirmation is always ours to send.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery.dispatch import dispatch_batch
from delivery.keywords import Keyword, KeywordKind, keyword_from_twilio, looks_like_stop_request
from delivery.models import Batch, InboundMessage, Message
from delivery.segments import analyze
from members.models import Member, OptOut, Suppression
from members.phones import InvalidPhoneNumber, normalize_phone
from members.services import opt_in_phone, opt_out_phone, subscribe_daily

logger = logging.getLogger(__name__)
Action = InboundMessage.Action

STOP_CONFIRMATION = "You're unsubscribed from {org}. No more messages. Reply START to resubscribe."
START_CONFIRMATION = "You're subscribed to {org} again. Reply HELP for help, STOP to opt out."
OPTED_IN_REASON = "START keyword"
STOP_REQUEST_REASON = "Asked to stop: {body}"
REPLY_MAX_LENGTH = 1600  # Twilio refuses longer bodies (error 21617)
_E164 = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True, slots=True)
class IncomingText:
    """The fields of Twilio's inbound webhook that we use."""

    message_sid: str
    from_raw: str
    to: str
    body: str
    num_media: int = 0
    opt_out_type: str = ""  # STOP/START/HELP when Twilio's Advanced Opt-Out matched


class ReplyRefused(Exception):
    """A reply staff may not send, with a sentence that says why."""


def receive_text(*, text: IncomingText) -> InboundMessage:
    """Record an inbound text and act on it, once per ``message_sid``."""
    phone = sender_phone(text.from_raw)
    keyword = keyword_from_twilio(body=text.body, opt_out_type=text.opt_out_type)
    is_flagged = keyword is None and looks_like_stop_request(text.body)
    with transaction.atomic():
        try:
            with transaction.atomic():
                inbound = InboundMessage.objects.create(
                    message_sid=text.message_sid,
                    from_phone=phone,
                    from_raw=text.from_raw[:64],
                    to=text.to[:64],
                    body=text.body,
                    num_media=max(0, min(text.num_media, 32767)),
                    member=Member.objects.filter(phone=phone).first() if phone else None,
                    keyword=keyword.word[:16] if keyword else "",
                    is_flagged=is_flagged,
                    action=Action.FLAGGED if is_flagged else Action.NONE,
                )
        except IntegrityError:
            logger.info("Inbound text %s was delivered again; nothing more done", text.message_sid)
            return InboundMessage.objects.get(message_sid=text.message_sid)
        if phone and keyword is not None:
            _act_on_keyword(inbound, keyword, twilio_answered=_twilio_answers(text))
        elif phone and is_flagged and settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS:
            _opt_out_sender(inbound, by=None)
            _set_handled(inbound, by=None)
            inbound.save(
                update_fields=["action", "reply", "is_handled", "handled_at", "handled_by"]
            )
    return inbound


def sender_phone(raw: str) -> str:
    """The sender in E.164, or "" when the ``From`` is no phone number (a short code...)."""
    try:
        return normalize_phone(raw, region=settings.DEFAULT_PHONE_REGION)
    except InvalidPhoneNumber:
        # Our normaliser refuses numbers we could never text (landlines...), yet such a
        # number can text STOP, and that must still be honoured.
        candidate = raw.strip()
        return candidate if _E164.fullmatch(candidate) else ""


def _twilio_answers(text: IncomingText) -> bool:
    # Twilio sends OptOutType only when its Advanced Opt-Out handled (and answered) the
    # keyword, whatever our setting says.
    return settings.TWILIO_ADVANCED_OPT_OUT or bool(text.opt_out_type.strip())


def _act_on_keyword(inbound: InboundMessage, keyword: Keyword, *, twilio_answered: bool) -> None:
    action = Action.NONE
    reply_body = ""
    if keyword.kind == KeywordKind.JOIN:
        if _join_daily_message(inbound):
            action = Action.JOINED
    elif keyword.kind == KeywordKind.OPT_OUT:
        if _opt_out(inbound.from_phone, source=OptOut.Source.KEYWORD, reason=keyword.word):
            action, reply_body = Action.OPTED_OUT, _stop_confirmation()
    elif keyword.kind == KeywordKind.OPT_IN:
        if opt_in_phone(phone=inbound.from_phone, reason=OPTED_IN_REASON):
            action, reply_body = Action.OPTED_IN, _start_confirmation()
    else:
        action, reply_body = Action.HELP_SENT, settings.SMS_HELP_TEXT
    if reply_body and not twilio_answered:
        # The answer to STOP or HELP must reach a phone that is (or just got) opted out.
        inbound.reply = _queue_reply(
            inbound, body=reply_body, is_compliance_reply=keyword.kind != KeywordKind.OPT_IN
        )
    inbound.action = action
    _set_handled(inbound, by=None)
    inbound.save(
        update_fields=["member", "action", "reply", "is_handled", "handled_at", "handled_by"]
    )


def _join_daily_message(inbound: InboundMessage) -> bool:
    """Subscribe the sender to the daily message and confirm it once; False when the
    sender is a number we could never text.

    An opted-out phone is subscribed (the daily message resumes if it texts START) but
    told nothing, and stays opted out: carriers and Twilio keep blocking it until START.
    """
    phone = inbound.from_phone
    try:
        normalize_phone(phone, region=settings.DEFAULT_PHONE_REGION)
    except InvalidPhoneNumber:
        return False
    member, _ = subscribe_daily(phone=phone)
    inbound.member = member
    is_opted_out = OptOut.objects.active().filter(phone=phone).exists()
    if member.daily_confirmed_at is None and not is_opted_out:
        inbound.reply = _queue_reply(
            inbound, body=settings.DAILY_MESSAGE_CONFIRMATION, is_compliance_reply=False
        )
        member.daily_confirmed_at = member.updated_at = timezone.now()
        member.save(update_fields=["daily_confirmed_at", "updated_at"])
    return True


def _opt_out_sender(inbound: InboundMessage, *, by: Any) -> bool:
    """Opt out the sender of a stop request in words, and confirm it (Twilio's opt-out
    handling only knows keywords, so it did not answer this one)."""
    reason = STOP_REQUEST_REASON.format(body=" ".join(inbound.body.split())[:200])
    source = OptOut.Source.STAFF if by is not None else OptOut.Source.KEYWORD
    if not _opt_out(inbound.from_phone, source=source, reason=reason, by=by):
        return False
    inbound.action = Action.OPTED_OUT
    inbound.reply = _queue_reply(inbound, body=_stop_confirmation(), is_compliance_reply=True)
    return True


def _opt_out(phone: str, *, source: str, reason: str, by: Any = None) -> bool:
    """Opt the phone out and cancel what waits to be sent to it; False if it already was."""
    if opt_out_phone(phone=phone, source=source, reason=reason, by=by) is None:
        return False
    cancel_pending_messages(phone=phone)
    return True


def cancel_pending_messages(*, phone: str) -> int:
    """Cancel every message to ``phone`` not yet claimed for sending, in one UPDATE.

    Messages a worker already claimed passed the claim-time check and may still go out.
    """
    now = timezone.now()
    return Message.objects.filter(
        phone=phone, status=Message.Status.PENDING, is_compliance_reply=False
    ).update(
        status=Message.Status.CANCELED,
        canceled_at=now,
        status_updated_at=now,
        error_message="Opted out before it was sent",
    )


def _stop_confirmation() -> str:
    return STOP_CONFIRMATION.format(org=settings.ORGANIZATION_NAME)


def _start_confirmation() -> str:
    return START_CONFIRMATION.format(org=settings.ORGANIZATION_NAME)


def _set_handled(inbound: InboundMessage, *, by: Any) -> None:
    inbound.is_handled = True
    inbound.handled_at = timezone.now()
    inbound.handled_by = by


def _reply_sender(to: str) -> str:
    # Answer from the number they texted; a number outside SMS_SENDERS belongs to a
    # Messaging Service's pool, whose sticky sender answers from that number too.
    return to if to in settings.SMS_SENDERS else settings.SMS_DEFAULT_SENDER


def _queue_reply(inbound: InboundMessage, *, body: str, is_compliance_reply: bool) -> Message:
    """Create a one-message REPLY batch to the sender and send it after commit."""
    sender = _reply_sender(inbound.to)
    shape = analyze(body)
    batch = Batch.objects.create(
        kind=Batch.Kind.REPLY, label=f"Reply to {inbound.from_phone}", sender=sender
    )
    message = Message.objects.create(
        batch=batch,
        kind=Batch.Kind.REPLY,
        phone=inbound.from_phone,
        sender=sender,
        body=body,
        encoding=shape.encoding,
        segments=shape.segments,
        is_compliance_reply=is_compliance_reply,
    )
    dispatch_batch(batch_id=batch.pk, chains=1)
    return message


# --- What staff do in the inbox ----------------------------------------------------------


def reply_refusal(*, inbound: InboundMessage) -> str | None:
    """Why staff may not reply to this text now, or None when they may."""
    phone = inbound.from_phone
    if not phone:
        return f"{inbound.from_raw or 'This sender'} is not a phone number we can text."
    if OptOut.objects.active().filter(phone=phone).exists():
        return f"{phone} has opted out: no reply can be sent unless they text START."
    if Suppression.objects.active().filter(phone=phone).exists():
        return f"{phone} is suppressed (messages to it keep failing): no reply can be sent."
    return None


def send_reply(*, inbound: InboundMessage, body: str, by: Any) -> Message:
    """Queue a staff reply to the sender through the normal pipeline, and mark the text
    handled. Raises :class:`ReplyRefused` for an empty or too long body, or a phone we
    must not text."""
    body = body.strip()
    if not body:
        raise ReplyRefused("The reply is empty.")
    if len(body) > REPLY_MAX_LENGTH:
        raise ReplyRefused(f"A reply can be at most {REPLY_MAX_LENGTH} characters.")
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=inbound.pk)
        refusal = reply_refusal(inbound=locked)
        if refusal:
            raise ReplyRefused(refusal)
        locked.reply = _queue_reply(locked, body=body, is_compliance_reply=False)
        if not locked.is_handled:
            _set_handled(locked, by=by)
        locked.save(update_fields=["reply", "is_handled", "handled_at", "handled_by"])
    inbound.refresh_from_db()
    return locked.reply


def mark_handled(*, inbound_ids: Iterable[int], by: Any) -> int:
    """Mark texts handled by ``by``; return how many were not handled yet."""
    return InboundMessage.objects.filter(pk__in=list(inbound_ids), is_handled=False).update(
        is_handled=True, handled_at=timezone.now(), handled_by=by
    )


def opt_out_flagged_senders(*, inbound_ids: Iterable[int], by: Any) -> int:
    """Staff's one click: opt out the senders of these flagged texts, confirm it to each,
    and mark the texts handled. Returns how many phones were opted out."""
    opted_out = 0
    with transaction.atomic():
        flagged = InboundMessage.objects.select_for_update().filter(
            pk__in=list(inbound_ids), is_flagged=True
        )
        for inbound in flagged.exclude(from_phone="").order_by("received_at", "id"):
            if _opt_out_sender(inbound, by=by):
                opted_out += 1
            if not inbound.is_handled:
                _set_handled(inbound, by=by)
            inbound.save(
                update_fields=["action", "reply", "is_handled", "handled_at", "handled_by"]
            )
    return opted_out
