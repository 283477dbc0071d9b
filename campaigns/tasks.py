"""Campaign jobs for beat: thin wrappers around the services."""

from __future__ import annotations

from celery import shared_task

from campaigns import services
from smsadmin.locks import one_at_a_time


@shared_task(name="campaigns.launch_due_campaigns")
@one_at_a_time("campaigns.launch_due_campaigns", timeout=600)
def launch_due_campaigns() -> list[int]:
    return services.launch_due_campaigns()


@shared_task(name="campaigns.finish_sent_campaigns")
@one_at_a_time("campaigns.finish_sent_campaigns", timeout=120)
def finish_sent_campaigns() -> list[int]:
    return services.finish_sent_campaigns()


@shared_task(name="campaigns.launch_campaign")
def launch_campaign(campaign_id: int) -> bool:
    return services.launch_campaign(campaign_id=campaign_id)
