"""Fill a database with a demo: two staff users (one per role) and a few hundred members.

``make run`` calls it with ``--if-empty`` so that a first start has something to show and
later starts leave the data alone. The members are generated from a fixed seed, so a second
run finds them already there and adds nothing; the staff users get new passwords.

Demo numbers come from ranges reserved for fiction where a country has one (US 555-01xx,
Australia's 0491 570 xxx), so a demo wired to a real provider by mistake texts nobody real
there.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from members.models import Event, EventRegistration, Member, OptOut, Suppression
from members.phones import normalize
from members.roles import ADMIN, SOCIAL_MANAGER

DEMO_STAFF = (("admin", ADMIN), ("manager", SOCIAL_MANAGER))
DEFAULT_MEMBER_COUNT = 300
MINIMUM_MEMBER_COUNT = 10  # enough for the opt-outs and suppressions below
DAILY_SUBSCRIBER_SHARE = 0.3
COMMUNITY_SHARE = 0.9
RANDOM_SEED = 20240501

# Area codes in several US time zones; 555-0100 to 555-0199 are fictional in each.
US_AREA_CODES = ("212", "617", "312", "713", "303", "602", "415", "206", "907", "808")
# A few numbers from elsewhere (Australia's from its range reserved for fiction).
INTERNATIONAL_NUMBERS_BY_COUNTRY = {
    "GB": ("+447911123401", "+447911123402", "+447700123403", "+447400123404"),
    "AU": ("+61491570006", "+61491570156", "+61491570157"),
    "IN": ("+919876543201", "+919876543202", "+919876543203"),
    "KE": ("+254712345601", "+254712345602", "+254722345603"),
}
INTERNATIONAL_NUMBERS = tuple(
    phone for phones in INTERNATIONAL_NUMBERS_BY_COUNTRY.values() for phone in phones
)
# fmt: off
FIRST_NAMES = (
    "Ada", "Amara", "Ana", "Ben", "Carlos", "Chen", "Dana", "Deepa", "Elena", "Emeka",
    "Fatima", "Grace", "Hana", "Ibrahim", "Isla", "Jamal", "Jin", "Kofi", "Lena", "Luis",
    "Maya", "Mei", "Nadia", "Noah", "Olu", "Priya", "Rosa", "Sam", "Sofia", "Tariq",
    "Theo", "Uma", "Wanjiru", "Yusuf", "Zanele", "Zoe",
)
LAST_NAMES = (
    "Abebe", "Ali", "Brown", "Chen", "Da Silva", "Dlamini", "Garcia", "Gupta", "Haddad",
    "Hopper", "Ito", "Johnson", "Kamau", "Kim", "Lee", "Lopez", "Martin", "Mensah", "Nguyen",
    "Novak", "Okafor", "O'Brien", "Patel", "Rossi", "Santos", "Singh", "Smith", "Tanaka",
    "Walker", "Williams", "Yilmaz",
)
# fmt: on
NEIGHBORHOODS = ("Mission", "Riverside", "Old Town", "Northgate", "Harbor", "Hillcrest")
COLORS = ("teal", "orange", "purple", "green", "yellow", "red", "blue")
MAXIMUM_MEMBER_COUNT = len(US_AREA_CODES) * 100 + len(INTERNATIONAL_NUMBERS)


@dataclass(frozen=True)
class DemoEvent:
    name: str
    slug: str
    location: str
    days_ahead: int
    registrant_count: int


DEMO_EVENTS = (
    DemoEvent("Spring volunteer day", "spring-volunteer-day", "Riverside Park", 21, 60),
    DemoEvent("Community picnic", "community-picnic", "Harbor Green", 45, 90),
)


class Command(BaseCommand):
    help = (
        "Create demo staff users (an Admin and a Social manager, with new random passwords) "
        "and a few hundred demo members in two events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when any user exists already (for automatic first starts).",
        )
        parser.add_argument(
            "--members",
            type=int,
            default=DEFAULT_MEMBER_COUNT,
            help=f"How many demo members (default {DEFAULT_MEMBER_COUNT}).",
        )

    def handle(self, *args: Any, if_empty: bool, members: int, **options: Any) -> None:
        if if_empty and get_user_model().objects.exists():
            self.stdout.write("Users exist already: no demo data added (--if-empty).")
            return
        if not MINIMUM_MEMBER_COUNT <= members <= MAXIMUM_MEMBER_COUNT:
            raise CommandError(
                f"--members must be between {MINIMUM_MEMBER_COUNT} and {MAXIMUM_MEMBER_COUNT}."
            )
        groups = {
            group.name: group for group in Group.objects.filter(name__in=[ADMIN, SOCIAL_MANAGER])
        }
        if len(groups) != 2:
            raise CommandError("The staff roles are missing: run `manage.py migrate` first.")

        with transaction.atomic():
            passwords = {
                username: self._reset_staff_user(username, groups[role])
                for username, role in DEMO_STAFF
            }
            summary = seed_demo_members(
                member_count=members,
                staff_user=get_user_model().objects.get(username=DEMO_STAFF[0][0]),
            )

        self.stdout.write("Demo staff users (the passwords are shown only now):")
        for username, role in DEMO_STAFF:
            self.stdout.write(f"  {username:<8} {role:<15} password: {passwords[username]}")
        self.stdout.write(self.style.SUCCESS(summary))

    def _reset_staff_user(self, username: str, group: Group) -> str:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.org", "is_superuser": False},
        )
        password = secrets.token_urlsafe(16)
        user.set_password(password)
        user.is_staff = True
        user.is_active = True
        user.save()
        user.groups.add(group)
        return password


def seed_demo_members(*, member_count: int, staff_user: Any) -> str:
    """Add the demo members, events, registrations, opt-outs and suppressions.

    Rows that exist already (same phone, event slug or registration) are left alone.
    Returns a one-line summary of what the database now holds of the demo.
    """
    rng = random.Random(RANDOM_SEED)  # noqa: S311 - demo data, not secrets
    now = timezone.now()
    phones = list(_demo_phones(member_count, rng))
    Member.objects.bulk_create(
        [_demo_member(phone, rng, now) for phone in phones], ignore_conflicts=True
    )
    demo_members = list(Member.objects.filter(phone__in=phones).order_by("phone"))

    registrations = []
    event_only = [member for member in demo_members if not member.is_community]
    for demo_event in DEMO_EVENTS:
        event, _ = Event.objects.get_or_create(
            slug=demo_event.slug,
            defaults={
                "name": demo_event.name,
                "location": demo_event.location,
                "starts_at": _day_at_ten(now + timedelta(days=demo_event.days_ahead)),
            },
        )
        registrants = set(
            rng.sample(demo_members, min(demo_event.registrant_count, len(demo_members)))
        )
        # People outside the community pool are here because of an event: give them one.
        if demo_event is DEMO_EVENTS[-1]:
            registrants.update(event_only)
        registrations += [
            EventRegistration(
                event=event,
                member=member,
                registered_at=now - timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 600)),
            )
            for member in sorted(registrants, key=lambda member: member.phone)
        ]
    EventRegistration.objects.bulk_create(registrations, ignore_conflicts=True)

    blocked = rng.sample(demo_members, 5)
    OptOut.objects.bulk_create(
        [
            OptOut(
                phone=blocked[0].phone,
                source=OptOut.Source.KEYWORD,
                reason="STOP",
                created_at=now - timedelta(days=12),
            ),
            OptOut(
                phone=blocked[1].phone,
                source=OptOut.Source.KEYWORD,
                reason="UNSUBSCRIBE",
                created_at=now - timedelta(days=5),
            ),
            OptOut(
                phone=blocked[2].phone,
                source=OptOut.Source.STAFF,
                reason="Asked at the spring fair",
                created_by=staff_user,
                created_at=now - timedelta(days=2),
            ),
        ],
        ignore_conflicts=True,  # one active opt-out per phone: a rerun adds nothing
    )
    Suppression.objects.bulk_create(
        [
            Suppression(
                phone=blocked[3].phone,
                reason=Suppression.Reason.LANDLINE,
                error_codes=[30006],
                detail="Landline or unreachable carrier",
                created_at=now - timedelta(days=9),
            ),
            Suppression(
                phone=blocked[4].phone,
                reason=Suppression.Reason.UNREACHABLE,
                error_codes=[30003, 30003, 30003],
                detail="Unreachable three times",
                created_at=now - timedelta(days=3),
            ),
        ],
        ignore_conflicts=True,
    )

    demo_queryset = Member.objects.filter(phone__in=phones)
    return (
        f"Demo data: {demo_queryset.count()} members "
        f"({demo_queryset.filter(is_daily_subscriber=True).count()} daily subscribers), "
        f"{len(DEMO_EVENTS)} events "
        f"({EventRegistration.objects.filter(member__phone__in=phones).count()} registrations), "
        f"{demo_queryset.opted_out().count()} opted out, "
        f"{demo_queryset.suppressed().count()} suppressed."
    )


def _demo_phones(count: int, rng: random.Random) -> Iterator[str]:
    """``count`` distinct demo numbers: a few international ones, the rest American."""
    international = list(INTERNATIONAL_NUMBERS[: count // 20])
    american = [
        f"+1{area_code}5550{line:03d}" for area_code in US_AREA_CODES for line in range(100, 200)
    ]
    yield from international
    yield from rng.sample(american, count - len(international))


def _demo_member(phone: str, rng: random.Random, now: datetime) -> Member:
    normalized = normalize(phone, region="US")
    created_at = now - timedelta(days=rng.randint(1, 120), minutes=rng.randint(0, 1440))
    return Member(
        phone=normalized.e164,
        number_timezones=list(normalized.timezones),
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        fields={
            "neighborhood": rng.choice(NEIGHBORHOODS),
            "favorite_color": rng.choice(COLORS),
        },
        is_community=rng.random() < COMMUNITY_SHARE,
        is_daily_subscriber=rng.random() < DAILY_SUBSCRIBER_SHARE,
        created_at=created_at,
        updated_at=created_at,
    )


def _day_at_ten(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(hour=10, minute=0, second=0, microsecond=0)
