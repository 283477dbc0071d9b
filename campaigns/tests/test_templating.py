"""Body templates: parsing, rendering in Python, and rendering in PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection

from campaigns.merge_fields import merge_values
from campaigns.templating import (
    Literal,
    Placeholder,
    RenderResult,
    TemplateError,
    parse_template,
)
from members.models import Member
from members.tests.factories import MemberFactory


def render(text: str, values: dict[str, str | None]) -> RenderResult:
    return parse_template(text).render(values)


# --- Parsing and rendering ----------------------------------------------------------------


def test_plain_text_has_no_fields_and_renders_as_it_is():
    template = parse_template("See you Saturday at 10!")

    assert template.fields == ()
    assert template.parts == (Literal("See you Saturday at 10!"),)
    assert template.render({}) == RenderResult("See you Saturday at 10!", ())


def test_empty_template_renders_empty():
    assert parse_template("").parts == ()
    assert render("", {}) == RenderResult("", ())


def test_fields_are_listed_once_in_order_of_first_use():
    template = parse_template("{last_name}, {first_name|friend} {last_name} {neighborhood}")

    assert template.fields == ("last_name", "first_name", "neighborhood")


def test_values_are_substituted():
    result = render(
        "Hi {first_name} {last_name}, we have {email} and {phone} for you in {neighborhood}.",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.org",
            "phone": "+14155550100",
            "neighborhood": "Mission",
        },
    )

    assert result == RenderResult(
        "Hi Ada Lovelace, we have ada@example.org and +14155550100 for you in Mission.", ()
    )


@pytest.mark.parametrize("values", [{}, {"first_name": ""}, {"first_name": None}])
def test_fallback_is_written_when_the_value_is_missing_empty_or_none(values):
    assert render("Hi {first_name|friend}!", values) == RenderResult("Hi friend!", ("first_name",))


def test_fallback_is_not_used_when_there_is_a_value():
    assert render("Hi {first_name|friend}!", {"first_name": "Mei"}) == RenderResult("Hi Mei!", ())


def test_field_without_fallback_writes_nothing_and_reports_the_field_once():
    result = render("Hi {first_name}! {neighborhood} {first_name}.", {"neighborhood": "Soma"})

    assert result == RenderResult("Hi ! Soma .", ("first_name",))


def test_fallback_may_hold_spaces_and_punctuation():
    template = parse_template("Hi {first_name|dear friend, neighbour}!")

    assert template.parts[1] == Placeholder("first_name", "dear friend, neighbour")
    assert template.render({}).text == "Hi dear friend, neighbour!"


def test_empty_fallback_is_the_same_as_no_fallback():
    assert parse_template("{first_name|}").parts == (Placeholder("first_name", None),)


def test_each_use_of_a_field_keeps_its_own_fallback():
    template = parse_template("{first_name|friend} / {first_name|pal} / {first_name}")

    assert template.render({}).text == "friend / pal / "
    assert template.fallbacks("first_name") == ("friend", "pal")
    assert template.fallbacks("last_name") == ()


def test_spaces_around_a_field_name_are_ignored():
    assert parse_template("{ first_name | friend}").parts == (Placeholder("first_name", " friend"),)


def test_imported_column_names_may_have_spaces_hyphens_digits_and_accents():
    template = parse_template("{favorite color} {zip-code} {2024} {quartier_préféré}")

    assert template.fields == ("favorite color", "zip-code", "2024", "quartier_préféré")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{first_name}}", "{first_name}"),
        ("{{{first_name}}}", "{Ada}"),
        ("Use {{ and }} freely", "Use { and } freely"),
        ("}}{{", "}{"),
    ],
)
def test_doubled_braces_write_literal_braces(text, expected):
    assert render(text, {"first_name": "Ada"}).text == expected


def test_literal_braces_are_not_fields():
    assert parse_template("{{first_name}}").fields == ()


def test_unicode_text_and_values_pass_through_unchanged():
    result = render("¡Hola {first_name|amiga}! 😀 東京 “{neighborhood}”", {"first_name": "Zoë"})

    assert result == RenderResult("¡Hola Zoë! 😀 東京 “”", ("neighborhood",))


def test_rendering_is_plain_substitution_without_escaping_or_evaluation():
    result = render(
        "<b>{first_name}</b> {last_name}",
        {"first_name": "Tom & <Jerry>", "last_name": "{first_name} {{x}} %s {0}"},
    )

    assert result.text == "<b>Tom & <Jerry></b> {first_name} {{x}} %s {0}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi {first_name",
            'Unclosed "{" at character 4 ("{first_name"): end the merge field with "}", '
            'or write "{{" for a literal "{".',
        ),
        (
            "Hi {first_name, see {venue}",
            'Unclosed "{" at character 4 ("{first_name, see {ve…"): end the merge field '
            'with "}", or write "{{" for a literal "{".',
        ),
        (
            "Hi first_name}",
            'Unmatched "}" at character 14: write "}}" for a literal "}".',
        ),
        (
            "Hi {first_name}}",
            'Unmatched "}" at character 16: write "}}" for a literal "}".',
        ),
        (
            "Hi {}",
            'Merge field "{}" at character 4 has no name: put a field name inside, like '
            '{first_name}, or write "{{" and "}}" for literal braces.',
        ),
        (
            "Hi { }",
            'Merge field "{ }" at character 4 has no name: put a field name inside, like '
            '{first_name}, or write "{{" and "}}" for literal braces.',
        ),
        (
            "Hi {|friend}",
            'Merge field "{|friend}" at character 4 has no name: put a field name inside, '
            'like {first_name}, or write "{{" and "}}" for literal braces.',
        ),
        (
            "{first_name.upper}",
            'Merge field "{first_name.upper}" at character 1 uses ".": merge fields are '
            "plain names, like {first_name}, without attributes.",
        ),
        (
            "{a[0]}",
            'Merge field "{a[0]}" at character 1 uses "[ ]": merge fields are plain names, '
            "like {first_name}, without indexes.",
        ),
        (
            "{__class__}",
            'Merge field "{__class__}" at character 1 starts with "_": merge field names '
            "start with a letter or a digit.",
        ),
        (
            "{first_name!r}",
            'Merge field "{first_name!r}" at character 1 is not a field name: use letters, '
            'digits, spaces, "-" and "_", and "|" before a fallback, like '
            "{first_name|friend}.",
        ),
        (
            "{first_name:>10}",
            'Merge field "{first_name:>10}" at character 1 is not a field name: use '
            'letters, digits, spaces, "-" and "_", and "|" before a fallback, like '
            "{first_name|friend}.",
        ),
    ],
)
def test_bad_template_is_refused_with_a_message_saying_what_and_where(text, message):
    with pytest.raises(TemplateError) as raised:
        parse_template(text)

    assert raised.value.message == message
    assert str(raised.value) == message


# --- SQL ----------------------------------------------------------------------------------


def test_to_sql_passes_every_literal_fallback_and_key_as_a_parameter():
    sql, params = parse_template("Hi {first_name|friend}, {neighborhood} {last_name}").to_sql()

    assert sql == (
        "concat(%s::text, COALESCE(NULLIF(m.\"first_name\", ''), %s), %s::text, "
        'COALESCE(m."fields" ->> %s, \'\'), %s::text, m."last_name")'
    )
    assert params == ["Hi ", "friend", ", ", "neighborhood", " "]


def test_to_sql_uses_the_given_member_alias_and_fallbacks_for_imported_columns():
    sql, params = parse_template("{venue|the hall}").to_sql(member_alias="member_row")

    assert sql == "concat(COALESCE(NULLIF(member_row.\"fields\" ->> %s, ''), %s))"
    assert params == ["venue", "the hall"]


def test_to_sql_of_an_empty_template_is_an_empty_string():
    assert parse_template("").to_sql() == ("''::text", [])


@pytest.mark.parametrize("alias", ["", "m; DROP TABLE x", 'm"', "1m", "m.n"])
def test_to_sql_refuses_an_alias_that_is_not_a_plain_name(alias):
    with pytest.raises(ValueError, match="is not a plain SQL alias"):
        parse_template("{first_name}").to_sql(member_alias=alias)


TEMPLATES = [
    "Hi {first_name|friend}, welcome to {neighborhood|our town}!",
    "{last_name}{email}{phone}",
    "{{literal}} {visits} {is_member} {ratio} {nickname|none}",
    "{note}",
    "{2024|no} {favorite color|no color}",
    "",
    "plain text with 100% and %s and %(name)s and \\ backslash and 'quotes'",
    "😀 {first_name|amigo} {missing key|—} 😀",
    "{first_name}",
    # More parts than a PostgreSQL function takes arguments (100).
    "{first_name|x}-" * 120,
]


@pytest.fixture
def members_with_every_kind_of_value(db):
    return [
        MemberFactory(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            fields={
                "neighborhood": "Mission",
                "visits": 3,
                "is_member": True,
                "ratio": 2.5,
                "nickname": None,
                "note": "50% off \\ 'single' \"double\" %s {first_name}",
            },
        ),
        MemberFactory(first_name="", last_name="", fields={"neighborhood": ""}),
        MemberFactory(first_name="Zoë", last_name="Ñúñez", fields={"neighborhood": "Δ 東京 😀"}),
        MemberFactory(first_name="Tariq", fields={}),
        MemberFactory(fields={"2024": "yes", "favorite color": "teal", "is_member": False}),
        MemberFactory(first_name="Kofi", fields={"first_name": "shadowed by the column"}),
    ]


@pytest.mark.parametrize("text", TEMPLATES)
def test_sql_rendering_equals_python_rendering(members_with_every_kind_of_value, text):
    template = parse_template(text)
    sql, params = template.to_sql(member_alias="m")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.id, {sql} FROM members_member m ORDER BY m.id",  # noqa: S608
            params,
        )
        rendered_in_sql = dict(cursor.fetchall())

    rendered_in_python = {
        member.pk: template.render(merge_values(member)).text
        for member in Member.objects.order_by("pk")
    }
    assert rendered_in_sql == rendered_in_python
    assert len(rendered_in_python) == 6
