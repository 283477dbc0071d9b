"""What a campaign would send, before it is sent: who, what it reads like, what it costs.

A handful of queries whatever the audience's size: the audience counts (one aggregate),
a few real recipients rendered as samples, and how many recipients lack each merge
value (one aggregate). Segments are counted on the samples and on the template's fixed
text; the total is an estimate (see :attr:`CampaignPreview.estimate_basis`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.conf import settings

from campaigns.audience import AudienceCounts, eligible_members, exclusion_counts
from campaigns.merge_fields import count_missing_values, merge_values
from campaigns.models import Campaign
from campaigns.templating import Template, TemplateError, parse_template
from delivery.segments import SegmentInfo, analyze
from members.models import Member

SAMPLE_SIZE = 5
LONG_MESSAGE_SEGMENTS = 2  # more than this gets a warning
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)[^\s]+")
_CENT = Decimal("0.01")


class WarningKind(StrEnum):
    UCS2_BODY = "ucs2_body"
    UCS2_MERGE_VALUES = "ucs2_merge_values"
    LONG = "long"
    FALLBACK = "fallback"
    LINKS = "links"
    NO_RECIPIENTS = "no_recipients"


@dataclass(frozen=True, slots=True)
class ForcingCharacter:
    """A character that forces UCS-2, and its GSM-7 look-alike if there is one."""

    character: str
    name: str
    replacement: str | None


@dataclass(frozen=True, slots=True)
class PreviewWarning:
    kind: WarningKind
    message: str
    characters: tuple[ForcingCharacter, ...] = ()

    @property
    def can_replace_characters(self) -> bool:
        """Whether "Replace with GSM characters" would change the body."""
        return any(character.replacement is not None for character in self.characters)


@dataclass(frozen=True, slots=True)
class Sample:
    recipient: str
    text: str
    fell_back: tuple[str, ...]
    segment_info: SegmentInfo


@dataclass(frozen=True)
class CampaignPreview:
    counts: AudienceCounts
    template_error: str | None = None
    samples: tuple[Sample, ...] = ()
    fixed_text_info: SegmentInfo | None = None
    segments_min: int = 0
    segments_max: int = 0
    typical_segments: int = 0
    estimated_segments: int = 0
    estimate_basis: str = ""
    estimated_cost: Decimal = Decimal("0.00")
    currency: str = ""
    missing_values: dict[str, int] | None = None
    warnings: tuple[PreviewWarning, ...] = ()

    @property
    def encodings(self) -> tuple[str, ...]:
        """The encodings the samples (or the fixed text, without samples) need."""
        infos = [sample.segment_info for sample in self.samples] or [self.fixed_text_info]
        return tuple(sorted({info.encoding for info in infos if info is not None}))


def build_preview(campaign: Campaign, *, sample_size: int = SAMPLE_SIZE) -> CampaignPreview:
    counts = exclusion_counts(campaign)
    try:
        template = parse_template(campaign.body)
    except TemplateError as error:
        return CampaignPreview(counts=counts, template_error=error.message)

    recipients = eligible_members(campaign)
    samples = tuple(
        _sample(template, member)
        for member in recipients.order_by("pk").only(
            "phone", "first_name", "last_name", "email", "fields"
        )[:sample_size]
    )
    fixed_text_info = analyze(template.render({}).text)
    sample_segments = [sample.segment_info.segments for sample in samples]
    typical_segments, estimate_basis = _typical_segments(
        sample_segments, fixed_text_info, counts.recipients
    )
    estimated_segments = counts.recipients * typical_segments
    price = Decimal(str(settings.SMS_PRICE_PER_SEGMENT))
    missing_values = count_missing_values(recipients, template) if counts.recipients else {}
    return CampaignPreview(
        counts=counts,
        samples=samples,
        fixed_text_info=fixed_text_info,
        segments_min=min(sample_segments, default=fixed_text_info.segments),
        segments_max=max(sample_segments, default=fixed_text_info.segments),
        typical_segments=typical_segments,
        estimated_segments=estimated_segments,
        estimate_basis=estimate_basis,
        estimated_cost=(price * estimated_segments).quantize(_CENT, ROUND_HALF_UP),
        currency=settings.SMS_PRICE_CURRENCY,
        missing_values=missing_values,
        warnings=tuple(_warnings(template, counts, samples, fixed_text_info, missing_values)),
    )


def _sample(template: Template, member: Member) -> Sample:
    rendered = template.render(merge_values(member))
    return Sample(
        recipient=str(member),
        text=rendered.text,
        fell_back=rendered.fell_back,
        segment_info=analyze(rendered.text),
    )


def _typical_segments(
    sample_segments: list[int], fixed_text_info: SegmentInfo, recipients: int
) -> tuple[int, str]:
    if not sample_segments:
        return (
            fixed_text_info.segments,
            "the template's fixed text, without merge values (there are no samples)",
        )
    # The most common count among the samples; on a tie, the higher (never under-promise).
    frequency = Counter(sample_segments)
    typical = max(frequency, key=lambda segments: (frequency[segments], segments))
    return (
        typical,
        f"{recipients:,} recipients × {typical} segment{'s' if typical != 1 else ''}, the "  # noqa: RUF001
        f"most common count among {len(sample_segments)} sample messages; merge values "
        "longer or shorter than the samples' change some messages' count",
    )


def _warnings(
    template: Template,
    counts: AudienceCounts,
    samples: tuple[Sample, ...],
    fixed_text_info: SegmentInfo,
    missing_values: dict[str, int],
) -> list[PreviewWarning]:
    warnings: list[PreviewWarning] = []
    if counts.recipients == 0:
        warnings.append(
            PreviewWarning(
                WarningKind.NO_RECIPIENTS,
                "No one would get this campaign: the audience has no member we may text.",
            )
        )
    if fixed_text_info.non_gsm_characters:
        characters = _forcing_characters(fixed_text_info.non_gsm_characters)
        warnings.append(
            PreviewWarning(
                WarningKind.UCS2_BODY,
                "These characters in the body force UCS-2, where a segment holds 70 "
                "characters instead of 160: "
                + ", ".join(_describe(character) for character in characters)
                + ".",
                characters,
            )
        )
    value_characters = _merge_value_characters(samples, fixed_text_info)
    if value_characters:
        affected = sum(1 for sample in samples if not sample.segment_info.is_gsm)
        warnings.append(
            PreviewWarning(
                WarningKind.UCS2_MERGE_VALUES,
                f"{affected} of {len(samples)} sample messages need UCS-2 because of "
                "characters in their merge values ("
                + ", ".join(_describe(character) for character in value_characters)
                + "); recipients with such values pay for more segments.",
                value_characters,
            )
        )
    longest = max(
        (sample.segment_info.segments for sample in samples),
        default=fixed_text_info.segments,
    )
    if longest > LONG_MESSAGE_SEGMENTS:
        warnings.append(
            PreviewWarning(
                WarningKind.LONG,
                f"Messages run to {longest} segments: each is billed as {longest} texts. "
                f"Two segments hold 306 GSM-7 characters (134 in UCS-2).",
            )
        )
    for name, missing in missing_values.items():
        if missing:
            warnings.append(
                PreviewWarning(
                    WarningKind.FALLBACK,
                    _fallback_message(template, name, missing, counts.recipients),
                )
            )
    links = tuple(dict.fromkeys(_LINK.findall(template.source)))
    if links:
        warnings.append(
            PreviewWarning(
                WarningKind.LINKS,
                f"The body has {'a link' if len(links) == 1 else 'links'} "
                f"({', '.join(links)}). Carriers filter texts with links, and links from "
                "public shorteners (bit.ly, tinyurl.com…) most of all: write the full "
                "address on your own domain, and send yourself a test first.",
            )
        )
    return warnings


def _forcing_characters(
    characters: tuple[tuple[str, str | None], ...],
) -> tuple[ForcingCharacter, ...]:
    return tuple(
        ForcingCharacter(character, _character_name(character), replacement)
        for character, replacement in characters
    )


def _merge_value_characters(
    samples: tuple[Sample, ...], fixed_text_info: SegmentInfo
) -> tuple[ForcingCharacter, ...]:
    in_body = {character for character, _ in fixed_text_info.non_gsm_characters}
    found: dict[str, str | None] = {}
    for sample in samples:
        for character, replacement in sample.segment_info.non_gsm_characters:
            if character not in in_body:
                found.setdefault(character, replacement)
    return _forcing_characters(tuple(found.items()))


def _character_name(character: str) -> str:
    return unicodedata.name(character, f"U+{ord(character):04X}").lower()


def _describe(character: ForcingCharacter) -> str:
    shown = f"{character.character} ({character.name})"
    if character.replacement is None:
        return f"{shown}, no GSM look-alike"
    if character.replacement == "":
        return f"{shown} → removed"
    return f"{shown} → {character.replacement}"


def _fallback_message(template: Template, name: str, missing: int, recipients: int) -> str:
    fallbacks = template.fallbacks(name)
    if fallbacks:
        instead = " or ".join(f"“{fallback}”" for fallback in fallbacks)
        outcome = f"they get {instead} instead"
    else:
        outcome = f"they get nothing in its place (add a fallback: {{{name}|…}})"
    return f"{{{name}}} is empty for {missing:,} of {recipients:,} recipients: {outcome}."
