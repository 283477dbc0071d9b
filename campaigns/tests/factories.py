"""Campaigns for tests, built with factory-boy."""

from __future__ import annotations

import factory

from campaigns.models import Campaign
from members.tests.factories import EventFactory


class CampaignFactory(factory.django.DjangoModelFactory):
    """A community draft; ``CampaignFactory(for_event=True)`` targets a new event."""

    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Spring update {n}")
    audience = Campaign.Audience.COMMUNITY
    event = None
    body = "Hi {first_name|friend}, the garden opens Saturday at 10."

    class Params:
        for_event = factory.Trait(
            audience=Campaign.Audience.EVENT, event=factory.SubFactory(EventFactory)
        )
