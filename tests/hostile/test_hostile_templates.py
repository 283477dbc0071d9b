"""Hostile campaign bodies through the parser, the preview, the live segment counter and
the compose form: a clear validation error or plain text, never a 500, and rendering
never shows Python internals."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.preview import build_preview
from campaigns.templating import TemplateError, parse_template
from campaigns.tests.factories import CampaignFactory
from members.tests.factories import MemberFactory

SENDER = "+15005550006"
ADD_URL = "/admin/campaigns/campaign/add/"
INTERNALS = ("<class", "<built-in", "<function", "<bound", "__", "object at 0x", "Traceback")
REFUSED = [
    ("{first_name", "Unclosed"),
    ("first_name}", "Unmatched"),
    ("Hi {first_name, see {last_name}", "Unclosed"),
    ("{}", "has no name"),
    ("{ }", "has no name"),
    ("{{}", "Unmatched"),
    ("{first_name.__class__}", 'uses "."'),
    ("{0.__globals__}", 'uses "."'),
    ("{first_name.upper}", 'uses "."'),
    ("{x[0]}", 'uses "[ ]"'),
    ("{first_name[__class__]}", 'uses "[ ]"'),
    ("{__class__}", 'starts with "_"'),
    ("{_}", 'starts with "_"'),
    ("{first_name!r}", "is not a field name"),
    ("{first_name!s:>10}", "is not a field name"),
    ("{first_name:%s}", "is not a field name"),
    ("{0:{1}}", "Unclosed"),
    ("{first_name|%s {{}}", "Unclosed"),
    ("{%(x)s}", "is not a field name"),
    ("{first_name\x00}", "is not a field name"),
    ("{\u202efirst_name}", "is not a field name"),
    ("{" * 9_999, "Unclosed"),
    ("}" * 9_999, "Unmatched"),
]


@pytest.fixture(autouse=True)
def senders(settings):
    settings.SMS_SENDERS = [SENDER]
    settings.SMS_DEFAULT_SENDER = SENDER


@pytest.mark.parametrize(("body", "named"), REFUSED, ids=[body[:30] for body, _ in REFUSED])
def test_a_bad_template_is_refused_with_a_message_naming_the_problem(body, named):
    with pytest.raises(TemplateError) as raised:
        parse_template(body)
    assert named in raised.value.message
    assert len(raised.value.message) < 400  # an excerpt, not the whole body echoed


@pytest.mark.parametrize(
    ("body", "values", "text"),
    [
        ("{{}}", {}, "{}"),
        ("{{first_name}}", {"first_name": "Ada"}, "{first_name}"),
        ("{{{first_name}}}", {"first_name": "Ada"}, "{Ada}"),
        ("{0}", {"0": "zero"}, "zero"),
        ("{first_name|%s %(x)s}", {}, "%s %(x)s"),  # fallback text is never interpreted
        ("{first_name|x|y}", {}, "x|y"),
        ("%s %d %(first_name)s", {"first_name": "Ada"}, "%s %d %(first_name)s"),
        ("Hi\x00{first_name}", {"first_name": "Ada"}, "Hi\x00Ada"),
        ("\ud800{first_name}\udfff", {"first_name": "Ada"}, "\ud800Ada\udfff"),
        ("{first_name}", {"first_name": "{last_name.__class__}"}, "{last_name.__class__}"),
    ],
)
def test_tricky_but_valid_templates_render_as_plain_text(body, values, text):
    assert parse_template(body).render(values).text == text


def test_ten_thousand_merge_fields_parse_render_and_compile_quickly():
    body = " ".join("{first_name|friend}" for _ in range(10_000))
    template = parse_template(body)
    assert template.fields == ("first_name",)
    assert template.render({}).text == " ".join(["friend"] * 10_000)
    sql, params = template.to_sql()
    assert len(params) == 2 * 10_000 - 1  # fallbacks and spaces
    assert "concat(" in sql


def test_ten_thousand_distinct_merge_fields_parse_and_render():
    body = "".join(f"{{field {number}}}" for number in range(10_000))
    template = parse_template(body)
    assert len(template.fields) == 10_000
    assert template.render({"field 9999": "last"}).text == "last"


def test_a_megabyte_body_parses_and_renders():
    body = ("x" * 1000 + "{first_name}") * 1000
    assert len(parse_template(body).render({"first_name": "A"}).text) == 1001 * 1000


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "Hi {first_name.__class__}",
        "Hi {first_name!r}",
        "Hi {x[0]}",
        "Hi {first_name",
        "Hi {{}",
    ],
)
def test_the_preview_of_a_bad_template_names_the_error(body):
    MemberFactory(first_name="Ada")
    campaign = CampaignFactory.build(body=body)
    campaign.save()
    preview = build_preview(campaign)
    assert preview.template_error
    assert preview.samples == ()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        " ".join(["{first_name|friend}"] * 10_000),
        "x" * 200_000,
        "\u202e\u200d{first_name}\u200d😀" + "é\u0301" * 500,
        "{{}} {0} {first_name}",
    ],
    ids=["10k-fields", "200k-chars", "unicode-tricks", "braces"],
)
def test_the_preview_of_an_extreme_template_renders_without_internals(body):
    MemberFactory(first_name="Ada", fields={"0": "zero"})
    campaign = CampaignFactory(body=body)
    preview = build_preview(campaign)
    assert preview.template_error is None
    assert len(preview.samples) == 1
    sample = preview.samples[0].text
    assert not any(marker in sample for marker in INTERNALS if marker not in body)


def compose(**overrides: str) -> dict[str, str]:
    return {
        "name": "Hostile",
        "audience": "community",
        "event": "",
        "sender": SENDER,
        "body": "Hi",
        "send_at_0": "",
        "send_at_1": "",
        "respect_quiet_hours": "on",
        **overrides,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("Hi {first_name", "Unclosed"),
        ("Hi first_name}", "Unmatched"),
        ("{{}", "Unmatched"),
        ("{first_name.__class__}", 'uses "."'),
        ("{0.__globals__}", 'uses "."'),
        ("{first_name!r}", "is not a field name"),
        ("{x[0]}", 'uses "[ ]"'),
        ("{__class__}", 'starts with "_"'),
        ("Hi\x00there", "Null characters are not allowed."),
        ("".join(f"{{f{number}}}" for number in range(10_000)), "Unknown merge fields"),
    ],
    ids=[
        "unclosed", "unmatched", "braces", "attribute", "globals", "conversion", "index",
        "dunder", "nul", "10k-unknown-fields",
    ],
)  # fmt: skip
def test_the_compose_form_refuses_a_bad_body_with_a_clear_error(staff_client, body, named):
    response = staff_client.post(ADD_URL, compose(body=body))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert named in " ".join(errors["body"])
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_the_compose_form_takes_an_unpaired_surrogate_as_a_replacement_character(staff_client):
    # Browsers cannot send one: its UTF-8 form is invalid bytes, which Django replaces.
    payload = "name=Hostile&audience=community&sender=%2B15005550006&body=Hi%ED%A0%80"
    response = staff_client.post(ADD_URL, payload, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert "\ud800" not in Campaign.objects.get().body


@pytest.mark.django_db
def test_the_compose_form_saves_ten_thousand_uses_of_a_known_field(staff_client):
    body = " ".join(["{first_name|friend}"] * 10_000)
    response = staff_client.post(ADD_URL, compose(body=body))
    assert response.status_code == 302
    assert Campaign.objects.get().body == body


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "{first_name.__class__}",
        "{first_name!r}",
        "{",
        "Hi\x00",
        " ".join(["{first_name}"] * 10_000),
        "\u202eSTOP\u200d😀",
    ],
    ids=["attribute", "conversion", "unclosed", "nul", "10k-fields", "unicode"],
)
def test_the_live_segment_counter_answers_json_for_any_body(staff_client, body):
    response = staff_client.post(reverse("admin:campaigns_campaign_segments"), {"body": body})
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"characters", "encoding", "segments", "template_error"}
