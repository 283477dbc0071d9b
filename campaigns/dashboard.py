"""The campaigns on the admin index: the ones sending now and the ones coming up."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Case, IntegerField, Value, When
from django.urls import reverse

from campaigns.models import Campaign
from delivery.dashboard import batches_percent

SHOWN_CAMPAIGNS = 6


@dataclass(frozen=True)
class CampaignInProgress:
    name: str
    state: str
    state_label: str
    url: str
    send_at: datetime.datetime | None
    # How many of its messages reached a final status; None before it is launched.
    percent: int | None


def campaigns_in_progress(*, limit: int = SHOWN_CAMPAIGNS) -> tuple[list[CampaignInProgress], int]:
    """Sending campaigns first, then scheduled ones by send time; and how many are left out.

    Two queries whatever the number of campaigns: the campaigns, then their batches' counts.
    """
    campaigns = list(
        Campaign.objects.filter(state__in=[Campaign.State.SENDING, Campaign.State.SCHEDULED])
        .annotate(
            sending_first=Case(
                When(state=Campaign.State.SENDING, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("sending_first", "send_at", "id")
        .only("name", "state", "send_at", "batch_id")[: limit + 1]
    )
    left_out = 0
    if len(campaigns) > limit:
        left_out = (
            Campaign.objects.filter(
                state__in=[Campaign.State.SENDING, Campaign.State.SCHEDULED]
            ).count()
            - limit
        )
        campaigns = campaigns[:limit]
    launched = [campaign.batch_id for campaign in campaigns if campaign.batch_id]
    percents = batches_percent(launched) if launched else {}
    return [
        CampaignInProgress(
            name=campaign.name,
            state=campaign.state,
            state_label=campaign.get_state_display(),
            url=reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
            send_at=campaign.send_at,
            percent=percents.get(campaign.batch_id, 0) if campaign.batch_id else None,
        )
        for campaign in campaigns
    ], left_out
