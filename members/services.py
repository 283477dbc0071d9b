"""Opting a phone out and back in, and subscribing it to the daily message: the writes
behind STOP, START, JOIN and staff's one click.

All are safe to race: the partial unique index "one active opt-out per phone" decides
which of two simultaneous STOPs creates the opt-out, and the unique phone of a member
which of two simultaneous JOINs creates the member; the other one changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member, OptOut
from members.phones import timezones_for_phone
from smsadmin.metrics import recording as metrics


def opt_out_phone(
    *, phone: str, source: OptOut.Source | str, reason: str, by: Any = None
) -> OptOut | None:
    """Opt ``phone`` out; return the new opt-out, or None when it already was opted out."""
    if OptOut.objects.active().filter(phone=phone).exists():
        return None
    try:
        # A savepoint: the caller's transaction survives losing the race.
        with transaction.atomic():
            opt_out = OptOut.objects.create(
                phone=phone, source=source, reason=reason[:255], created_by=by
            )
    except IntegrityError:
        return None
    metrics.count_opt_out(source=opt_out.source)
    return opt_out


def opt_in_phone(*, phone: str, reason: str, by: Any = None) -> bool:
    """Lift the phone's active opt-out (kept as history); False when there was none."""
    with transaction.atomic():
        opt_out = OptOut.objects.active().select_for_update().filter(phone=phone).first()
        if opt_out is None:
            return False
        opt_out.lift(by=by, reason=reason[:255])
    return True


def subscribe_daily(*, phone: str) -> tuple[Member, bool]:
    """Make the member with ``phone`` a daily subscriber, creating one when no member has
    it; return the member and whether it was newly subscribed.

    A member created here is not in the community pool: they asked for the daily message,
    not for community texts. The member stays locked until the caller's transaction ends,
    so two JOINs from one phone are handled one after the other.
    """
    with transaction.atomic():
        member = Member.objects.select_for_update().filter(phone=phone).first()
        if member is None:
            try:
                # A savepoint: the caller's transaction survives losing the race.
                with transaction.atomic():
                    member = Member.objects.create(
                        phone=phone,
                        number_timezones=list(timezones_for_phone(phone)),
                        is_community=False,
                        is_daily_subscriber=True,
                    )
                return member, True
            except IntegrityError:
                member = Member.objects.select_for_update().get(phone=phone)
        if member.is_daily_subscriber:
            return member, False
        member.is_daily_subscriber = True
        member.updated_at = timezone.now()
        member.save(update_fields=["is_daily_subscriber", "updated_at"])
    return member, True
