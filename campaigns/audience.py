"""Who gets a campaign: its pool, minus opted-out and suppressed phones, one per phone.

The pool is the community (``Member.is_community``) or the registrants of the
campaign's event. Everything here is a queryset or one aggregate query, so it costs the
same few scans at a million members as at ten.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from campaigns.models import Campaign
from members.models import EventRegistration, Member, OptOut, Suppression


@dataclass(frozen=True, slots=True)
class AudienceCounts:
    """The pool and why members of it are left out.

    Each left-out member is counted once, under the first reason that applies, in this
    order: no phone, opted out, suppressed, duplicate phone. So
    ``pool == recipients + no_phone + opted_out + suppressed + duplicate_phones``.
    """

    pool: int
    no_phone: int
    opted_out: int
    suppressed: int
    duplicate_phones: int

    @property
    def excluded(self) -> int:
        return self.no_phone + self.opted_out + self.suppressed + self.duplicate_phones

    @property
    def recipients(self) -> int:
        return self.pool - self.excluded


def audience_pool(campaign: Campaign) -> QuerySet[Member]:
    """Every member of the campaign's pool, before any exclusion."""
    if campaign.audience == Campaign.Audience.EVENT:
        if campaign.event_id is None:
            return Member.objects.none()
        # A semi-join, not a join: the result stays one row per member by construction.
        return Member.objects.filter(
            Exists(
                EventRegistration.objects.filter(
                    event_id=campaign.event_id, member_id=OuterRef("pk")
                )
            )
        )
    return Member.objects.filter(is_community=True)


def eligible_members(campaign: Campaign) -> QuerySet[Member]:
    """The members who get the campaign: the pool minus members without a phone, active
    opt-outs and active suppressions.

    One per phone: ``Member.phone`` is unique, so the pool never holds a phone twice
    (``AudienceCounts.duplicate_phones`` is 0 for that reason).
    """
    return audience_pool(campaign).exclude(phone="").textable()


def exclusion_counts(campaign: Campaign) -> AudienceCounts:
    """The pool's size and each exclusion, in one aggregate query (one scan of the pool)."""
    # IN (uncorrelated subquery), not EXISTS: PostgreSQL hashes the active blocks once,
    # where a correlated EXISTS inside FILTER is an index probe per member.
    opted_out = Q(phone__in=OptOut.objects.active().values("phone"))
    suppressed = Q(phone__in=Suppression.objects.active().values("phone"))
    has_phone = ~Q(phone="")
    counts = (
        audience_pool(campaign)
        .order_by()
        .aggregate(
            pool=Count("pk"),
            no_phone=Count("pk", filter=~has_phone),
            opted_out=Count("pk", filter=has_phone & opted_out),
            suppressed=Count("pk", filter=has_phone & ~opted_out & suppressed),
        )
    )
    # Member.phone is unique (and the event pool is a semi-join), so no phone can appear
    # twice: counting duplicates would be a COUNT(DISTINCT phone) over the pool for a 0.
    return AudienceCounts(duplicate_phones=0, **counts)
