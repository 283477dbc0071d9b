from __future__ import annotations

import factory

from delivery.models import Batch, Message
from members.tests.factories import us_mobile


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    kind = Batch.Kind.CAMPAIGN
    label = factory.Sequence(lambda n: f"Campaign: spring update {n}")
    sender = "+15005550006"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    batch = factory.SubFactory(BatchFactory)
    kind = factory.SelfAttribute("batch.kind")
    phone = factory.Sequence(us_mobile)
    sender = factory.SelfAttribute("batch.sender")
    body = "Hi! The picnic starts at noon. Reply STOP to opt out."
    segments = 1
