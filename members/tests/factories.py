"""Test data: a small readable cast, built with factory-boy."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from members.models import Event, EventRegistration, Member, OptOut, Suppression
from members.roles import ADMIN, SOCIAL_MANAGER

STAFF_PASSWORD = "correct horse battery staple"


def us_mobile(sequence: int) -> str:
    """A valid US number, distinct per ``sequence`` (San Francisco's 415 area code)."""
    return f"+1415{200 + sequence // 10_000 % 800:03d}{sequence % 10_000:04d}"


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member
        django_get_or_create = ("phone",)

    phone = factory.Sequence(us_mobile)
    first_name = factory.Iterator(["Ada", "Grace", "Kofi", "Mei", "Tariq", "Zanele"])
    last_name = factory.Iterator(["Lovelace", "Hopper", "Annan", "Chen", "Ali", "Dlamini"])
    number_timezones = factory.LazyFunction(lambda: ["America/Los_Angeles"])


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    name = factory.Sequence(lambda n: f"Community picnic {n}")
    slug = factory.Sequence(lambda n: f"picnic-{n}")


class EventRegistrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventRegistration

    event = factory.SubFactory(EventFactory)
    member = factory.SubFactory(MemberFactory)


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OptOut

    phone = factory.Sequence(us_mobile)
    source = OptOut.Source.KEYWORD
    reason = "STOP"


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    phone = factory.Sequence(us_mobile)
    reason = Suppression.Reason.LANDLINE
    error_codes = factory.LazyFunction(lambda: [30006])


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", STAFF_PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


def admin_user(**kwargs: object) -> object:
    return UserFactory(role=ADMIN, **kwargs)


def social_manager(**kwargs: object) -> object:
    return UserFactory(role=SOCIAL_MANAGER, **kwargs)
