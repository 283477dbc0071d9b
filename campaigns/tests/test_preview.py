"""The preview: counts, samples, encoding and segments, cost, and each warning."""

# Curly quotes, dashes and × are the point of these tests.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns.audience import AudienceCounts
from campaigns.preview import (
    ForcingCharacter,
    PreviewWarning,
    WarningKind,
    build_preview,
)
from campaigns.tests.factories import CampaignFactory
from members.tests.factories import MemberFactory, OptOutFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

LINK_ADVICE = (
    "Carriers filter texts with links, and links from public shorteners (bit.ly, "
    "tinyurl.com…) most of all: write the full address on your own domain, and send "
    "yourself a test first."
)


@pytest.fixture(autouse=True)
def price(settings):
    settings.SMS_PRICE_PER_SEGMENT = 0.05
    settings.SMS_PRICE_CURRENCY = "EUR"


def warnings_of_kind(preview, kind):
    return [warning for warning in preview.warnings if warning.kind == kind]


def test_preview_counts_recipients_and_each_exclusion():
    MemberFactory.create_batch(3)
    OptOutFactory(phone=MemberFactory().phone)
    SuppressionFactory(phone=MemberFactory().phone)
    SuppressionFactory(phone=MemberFactory().phone)
    MemberFactory(is_community=False)

    preview = build_preview(CampaignFactory(body="Garden opens Saturday."))

    assert preview.counts == AudienceCounts(
        pool=6, no_phone=0, opted_out=1, suppressed=2, duplicate_phones=0
    )
    assert preview.counts.recipients == 3


def test_samples_are_the_first_recipients_rendered_with_their_fallbacks_named():
    ada = MemberFactory(first_name="Ada", fields={"neighborhood": "Mission"})
    nameless = MemberFactory(first_name="", fields={"neighborhood": "Soma"})
    opted_out = MemberFactory(first_name="Opted")
    OptOutFactory(phone=opted_out.phone)
    no_fields = MemberFactory(first_name="Kofi")
    MemberFactory.create_batch(3, fields={"neighborhood": "Bayview"})

    preview = build_preview(
        CampaignFactory(body="Hi {first_name|friend}, see you in {neighborhood}.")
    )

    assert [(sample.recipient, sample.text, sample.fell_back) for sample in preview.samples][
        :3
    ] == [
        (str(ada), "Hi Ada, see you in Mission.", ()),
        (str(nameless), "Hi friend, see you in Soma.", ("first_name",)),
        (str(no_fields), "Hi Kofi, see you in .", ("neighborhood",)),
    ]
    assert len(preview.samples) == 5


def test_sample_size_can_be_chosen():
    MemberFactory.create_batch(4)

    assert len(build_preview(CampaignFactory(), sample_size=2).samples) == 2


def test_encoding_and_segments_range_across_the_samples():
    MemberFactory(fields={"note": "short"})
    MemberFactory(fields={"note": "x" * 160})
    MemberFactory(fields={"note": "y" * 310})

    preview = build_preview(CampaignFactory(body="Note: {note}"))

    assert [sample.segment_info.segments for sample in preview.samples] == [1, 2, 3]
    assert (preview.segments_min, preview.segments_max) == (1, 3)
    assert preview.encodings == ("GSM-7",)
    assert preview.fixed_text_info.units == len("Note: ")
    assert preview.fixed_text_info.segments == 1


def test_total_segments_and_cost_use_the_most_common_sample_count():
    MemberFactory.create_batch(2, fields={"note": "x" * 200})  # 2 segments each
    MemberFactory(fields={"note": "short"})  # 1 segment
    MemberFactory.create_batch(4, fields={"note": "y" * 200})  # 2 segments each

    preview = build_preview(CampaignFactory(body="Note: {note}"))

    # Samples are the first 5 by id: 2, 2, 1, 2, 2 segments; 7 recipients × 2.
    assert preview.typical_segments == 2
    assert preview.estimated_segments == 14
    assert preview.estimated_cost == Decimal("0.70")
    assert preview.currency == "EUR"
    assert preview.estimate_basis == (
        "7 recipients × 2 segments, the most common count among 5 sample messages; "
        "merge values longer or shorter than the samples' change some messages' count"
    )


def test_a_tie_between_segment_counts_estimates_with_the_higher():
    MemberFactory(fields={"note": "short"})
    MemberFactory(fields={"note": "x" * 200})

    preview = build_preview(CampaignFactory(body="Note: {note}"))

    assert preview.typical_segments == 2
    assert preview.estimated_segments == 4


def test_cost_is_rounded_to_the_cent(settings):
    settings.SMS_PRICE_PER_SEGMENT = 0.0083
    MemberFactory.create_batch(3)

    preview = build_preview(CampaignFactory(body="Garden opens Saturday."))

    assert preview.estimated_segments == 3
    assert preview.estimated_cost == Decimal("0.02")  # 0.0249


def test_without_recipients_the_estimate_comes_from_the_fixed_text():
    preview = build_preview(CampaignFactory(body="x" * 200))

    assert preview.samples == ()
    assert preview.typical_segments == 2
    assert preview.estimated_segments == 0
    assert preview.estimated_cost == Decimal("0.00")
    assert preview.estimate_basis == (
        "the template's fixed text, without merge values (there are no samples)"
    )
    assert preview.warnings == (
        PreviewWarning(
            WarningKind.NO_RECIPIENTS,
            "No one would get this campaign: the audience has no member we may text.",
        ),
    )


def test_a_plain_short_body_has_no_warning():
    MemberFactory.create_batch(2, first_name="Mei")

    assert build_preview(CampaignFactory(body="Hi {first_name|friend}!")).warnings == ()


def test_characters_forcing_ucs2_are_named_with_their_gsm_replacement():
    MemberFactory()

    preview = build_preview(CampaignFactory(body="Don’t miss it — 10am 😀"))

    assert preview.warnings == (
        PreviewWarning(
            WarningKind.UCS2_BODY,
            "These characters in the body force UCS-2, where a segment holds 70 characters "
            "instead of 160: ’ (right single quotation mark) → ', — (em dash) → -, "
            "😀 (grinning face), no GSM look-alike.",
            (
                ForcingCharacter("’", "right single quotation mark", "'"),
                ForcingCharacter("—", "em dash", "-"),
                ForcingCharacter("😀", "grinning face", None),
            ),
        ),
    )
    assert preview.warnings[0].can_replace_characters is True
    assert preview.encodings == ("UCS-2",)


def test_a_body_only_unfixable_characters_cannot_be_replaced():
    MemberFactory()

    (warning,) = build_preview(CampaignFactory(body="Bonne année 😀")).warnings

    assert warning.kind == WarningKind.UCS2_BODY
    assert warning.can_replace_characters is False


def test_merge_values_that_force_ucs2_are_reported_apart_from_the_body():
    MemberFactory(first_name="Paweł")
    MemberFactory(first_name="Ada")

    preview = build_preview(CampaignFactory(body="Hi {first_name}!"))

    assert preview.warnings == (
        PreviewWarning(
            WarningKind.UCS2_MERGE_VALUES,
            "1 of 2 sample messages need UCS-2 because of characters in their merge values "
            "(ł (latin small letter l with stroke), no GSM look-alike); recipients with "
            "such values pay for more segments.",
            (ForcingCharacter("ł", "latin small letter l with stroke", None),),
        ),
    )
    assert preview.encodings == ("GSM-7", "UCS-2")


def test_a_body_over_two_segments_is_warned_about():
    MemberFactory()

    preview = build_preview(CampaignFactory(body="z" * 307))

    assert preview.warnings == (
        PreviewWarning(
            WarningKind.LONG,
            "Messages run to 3 segments: each is billed as 3 texts. Two segments hold 306 "
            "GSM-7 characters (134 in UCS-2).",
        ),
    )


def test_missing_merge_values_are_counted_with_what_recipients_get_instead():
    MemberFactory(first_name="", fields={"neighborhood": "Soma"})
    MemberFactory(first_name="", fields={})
    MemberFactory(first_name="Ada", fields={"neighborhood": ""})
    MemberFactory(first_name="Mei", fields={"neighborhood": "Mission"})

    preview = build_preview(
        CampaignFactory(body="Hi {first_name|friend}, {neighborhood} {first_name|pal}")
    )

    assert preview.missing_values == {"first_name": 2, "neighborhood": 2}
    assert preview.warnings == (
        PreviewWarning(
            WarningKind.FALLBACK,
            "{first_name} is empty for 2 of 4 recipients: they get “friend” or “pal” instead.",
        ),
        PreviewWarning(
            WarningKind.FALLBACK,
            "{neighborhood} is empty for 2 of 4 recipients: they get nothing in its place "
            "(add a fallback: {neighborhood|…}).",
        ),
    )


def test_missing_values_count_only_recipients():
    opted_out = MemberFactory(first_name="")
    OptOutFactory(phone=opted_out.phone)
    MemberFactory(first_name="Ada")

    preview = build_preview(CampaignFactory(body="Hi {first_name|friend}"))

    assert preview.missing_values == {"first_name": 0}
    assert preview.warnings == ()


@pytest.mark.parametrize(
    ("body", "links"),
    [
        ("RSVP at https://bit.ly/garden now", "a link (https://bit.ly/garden)"),
        (
            "See www.example.org/x or HTTP://Example.org",
            "links (www.example.org/x, HTTP://Example.org)",
        ),
    ],
)
def test_links_in_the_body_are_warned_about(body, links):
    MemberFactory()

    preview = build_preview(CampaignFactory(body=body))

    assert preview.warnings == (
        PreviewWarning(WarningKind.LINKS, f"The body has {links}. {LINK_ADVICE}"),
    )


def test_a_body_that_does_not_parse_gives_counts_and_the_error_only():
    MemberFactory.create_batch(2)
    campaign = CampaignFactory(body="Hi {first_name")  # saved around validation

    preview = build_preview(campaign)

    assert preview.template_error == (
        'Unclosed "{" at character 4 ("{first_name"): end the merge field with "}", or '
        'write "{{" for a literal "{".'
    )
    assert preview.counts.recipients == 2
    assert preview.samples == ()
    assert preview.warnings == ()


def test_preview_takes_three_queries_whatever_the_audience_size(django_assert_num_queries):
    MemberFactory.create_batch(8, fields={"neighborhood": "Soma"})
    campaign = CampaignFactory(body="Hi {first_name|friend} in {neighborhood}")

    # Counts (one aggregate), the samples, the missing values (one aggregate).
    with django_assert_num_queries(3):
        build_preview(campaign)
