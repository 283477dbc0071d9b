"""Opting a phone out and back in: the writes behind STOP, START and staff's one click.

Both are safe to race: the partial unique index "one active opt-out per phone" decides
which of two simultaneous STOPs creates the opt-out, and the other one changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from members.models import OptOut


def opt_out_phone(
    *, phone: str, source: OptOut.Source | str, reason: str, by: Any = None
) -> OptOut | None:
    """Opt ``phone`` out; return the new opt-out, or None when it already was opted out."""
    if OptOut.objects.active().filter(phone=phone).exists():
        return None
    try:
        # A savepoint: the caller's transaction survives losing the race.
        with transaction.atomic():
            return OptOut.objects.create(
                phone=phone, source=source, reason=reason[:255], created_by=by
            )
    except IntegrityError:
        return None


def opt_in_phone(*, phone: str, reason: str, by: Any = None) -> bool:
    """Lift the phone's active opt-out (kept as history); False when there was none."""
    with transaction.atomic():
        opt_out = OptOut.objects.active().select_for_update().filter(phone=phone).first()
        if opt_out is None:
            return False
        opt_out.lift(by=by, reason=reason[:255])
    return True
