"""Who gets a campaign: the pool, minus opt-outs and suppressions, each counted."""

from __future__ import annotations

import pytest
from django.db import connection

from campaigns.audience import (
    AudienceCounts,
    audience_pool,
    eligible_members,
    exclusion_counts,
)
from campaigns.merge_fields import count_missing_values, known_merge_fields
from campaigns.templating import parse_template
from campaigns.tests.factories import CampaignFactory
from members.models import Member, OptOut, Suppression
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db


def phones(members) -> set[str]:
    return set(members.values_list("phone", flat=True))


@pytest.fixture
def community():
    """Six community members: two plain, one opted out, one suppressed, one both, one whose
    opt-out was lifted; and one member outside the community pool."""
    cast = {
        "plain": MemberFactory(),
        "plain_too": MemberFactory(),
        "opted_out": MemberFactory(),
        "suppressed": MemberFactory(),
        "both": MemberFactory(),
        "opted_back_in": MemberFactory(),
        "not_in_community": MemberFactory(is_community=False),
    }
    OptOutFactory(phone=cast["opted_out"].phone)
    SuppressionFactory(phone=cast["suppressed"].phone)
    OptOutFactory(phone=cast["both"].phone)
    SuppressionFactory(phone=cast["both"].phone)
    OptOutFactory(phone=cast["opted_back_in"].phone).lift(reason="Texted START")
    return cast


def test_community_audience_is_the_community_pool_minus_active_opt_outs_and_suppressions(
    community,
):
    campaign = CampaignFactory()

    assert phones(eligible_members(campaign)) == {
        community["plain"].phone,
        community["plain_too"].phone,
        community["opted_back_in"].phone,
    }


def test_community_exclusions_are_counted_once_each_first_reason_first(community):
    campaign = CampaignFactory()

    counts = exclusion_counts(campaign)

    # "both" is counted as opted out only: pool = recipients + every exclusion.
    assert counts == AudienceCounts(
        pool=6, no_phone=0, opted_out=2, suppressed=1, duplicate_phones=0
    )
    assert counts.excluded == 3
    assert counts.recipients == 3 == eligible_members(campaign).count()


def test_exclusion_counts_take_one_query(community, django_assert_num_queries):
    campaign = CampaignFactory()

    with django_assert_num_queries(1):
        exclusion_counts(campaign)


def test_a_lifted_opt_out_or_suppression_makes_the_member_eligible_again(community):
    campaign = CampaignFactory()
    both = community["both"].phone

    OptOut.objects.active().get(phone=both).lift(reason="Texted START")
    Suppression.objects.active().get(phone=both).lift(reason="Number fixed")

    assert both in phones(eligible_members(campaign))
    assert exclusion_counts(campaign) == AudienceCounts(
        pool=6, no_phone=0, opted_out=1, suppressed=1, duplicate_phones=0
    )


def test_event_audience_is_its_registrants_whether_or_not_in_the_community(community):
    event = EventFactory()
    other_event = EventFactory()
    outsider = MemberFactory(is_community=False)
    for member in (community["plain"], community["opted_out"], community["suppressed"], outsider):
        EventRegistrationFactory(event=event, member=member)
    EventRegistrationFactory(event=other_event, member=community["plain_too"])
    campaign = CampaignFactory(audience="event", event=event)

    assert phones(audience_pool(campaign)) == {
        community["plain"].phone,
        community["opted_out"].phone,
        community["suppressed"].phone,
        outsider.phone,
    }
    assert phones(eligible_members(campaign)) == {community["plain"].phone, outsider.phone}
    assert exclusion_counts(campaign) == AudienceCounts(
        pool=4, no_phone=0, opted_out=1, suppressed=1, duplicate_phones=0
    )


def test_event_without_registrants_has_no_recipients(community):
    campaign = CampaignFactory(for_event=True)

    assert eligible_members(campaign).count() == 0
    assert exclusion_counts(campaign) == AudienceCounts(0, 0, 0, 0, 0)


def test_event_audience_without_an_event_is_empty(community):
    campaign = CampaignFactory.build(audience="event", event=None)

    assert audience_pool(campaign).count() == 0


def test_member_without_a_phone_is_counted_and_left_out(community):
    # Member.phone is required, but a row written around validation must still not be
    # texted (or counted as a recipient).
    no_phone = MemberFactory(phone="")
    campaign = CampaignFactory()

    assert no_phone.phone not in phones(eligible_members(campaign))
    assert exclusion_counts(campaign) == AudienceCounts(
        pool=7, no_phone=1, opted_out=2, suppressed=1, duplicate_phones=0
    )


# --- Merge fields of an audience ----------------------------------------------------------


@pytest.fixture
def members_with_fields():
    in_community = MemberFactory(fields={"neighborhood": "Mission", "visits": 2})
    MemberFactory(fields={"neighborhood": "", "shoe size": None})
    MemberFactory(fields={})
    MemberFactory(is_community=False, fields={"secret": "outside the pool"})
    return in_community


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_known_merge_fields_are_the_columns_and_the_keys_members_of_the_pool_have(
    members_with_fields, monkeypatch, vendor
):
    if vendor == "other":
        # The portable path the SQLite demo takes, run here on the same rows.
        monkeypatch.setattr(connection, "vendor", "sqlite")
    campaign = CampaignFactory()

    assert known_merge_fields(audience_pool(campaign)) == {
        "first_name",
        "last_name",
        "email",
        "phone",
        "neighborhood",
        "visits",
        "shoe size",
    }


def test_count_missing_values_counts_missing_null_and_empty_values(members_with_fields):
    MemberFactory(first_name="")
    campaign = CampaignFactory()
    template = parse_template("{first_name|friend} {neighborhood} {shoe size} {visits} {email}")

    assert count_missing_values(eligible_members(campaign), template) == {
        "first_name": 1,
        "neighborhood": 3,
        "shoe size": 4,
        "visits": 3,
        "email": 4,
    }
    assert Member.objects.filter(is_community=True).count() == 4


def test_count_missing_values_reads_a_name_of_digits_as_a_key_not_an_index():
    MemberFactory(fields={"2024": "yes"})
    MemberFactory(fields={"2024": ""})
    campaign = CampaignFactory()

    assert count_missing_values(eligible_members(campaign), parse_template("{2024}")) == {"2024": 1}
