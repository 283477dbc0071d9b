"""The import service, on both writers: what lands in the database and what is counted.

Every test runs with the PostgreSQL COPY writer and with the portable ORM writer (the
one SQLite uses), so that their behaviour cannot drift apart.
"""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any

import pytest
from django.utils import timezone

from members.importing.reader import ImportRefused
from members.importing.services import ImportSummary, import_members
from members.importing.writers import PortableWriter, PostgresWriter
from members.models import Event, EventRegistration, Member, OptOut, Suppression
from members.phones import normalize
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db

SF_ZONES = ["America/Los_Angeles"]


@pytest.fixture(params=[PostgresWriter, PortableWriter], ids=["postgres-copy", "portable-orm"])
def writer_class(request):
    return request.param


def run_import(
    content: str | bytes, writer_class: Any, **options: Any
) -> tuple[ImportSummary, list[list[str]]]:
    """Import ``content``; return the summary and the error report's rows."""
    data = content.encode() if isinstance(content, str) else content
    report = io.StringIO()
    options.setdefault("region", "US")
    options.setdefault("validation_processes", 0)
    summary = import_members(
        file=io.BytesIO(data), error_report=report, writer_class=writer_class, **options
    )
    return summary, list(csv.reader(io.StringIO(report.getvalue())))


def member_values(phone: str) -> dict[str, Any]:
    return Member.objects.filter(phone=phone).values(
        "first_name", "last_name", "email", "fields", "timezone", "number_timezones",
        "is_community", "is_daily_subscriber",
    ).get()  # fmt: skip


def counts(summary: ImportSummary) -> dict[str, int]:
    names = ("rows", "created", "updated", "duplicates", "rejected", "opted_out", "suppressed")
    return {name: getattr(summary, name) for name in names}


def test_new_rows_create_members_in_the_community_pool(writer_class):
    summary, report = run_import(
        "phone,first_name,last_name,email\n"
        "(415) 555-0100,Ada,Lovelace,ada@example.org\n"
        "+1 415 555 0101,Grace,,\n",
        writer_class,
    )

    assert counts(summary) == {
        "rows": 2, "created": 2, "updated": 0, "duplicates": 0, "rejected": 0,
        "opted_out": 0, "suppressed": 0,
    }  # fmt: skip
    assert summary.line() == (
        "Imported: 2 rows: created 2, updated 0, duplicates 0, rejected 0, opted out 0, "
        "suppressed 0."
    )
    assert report == [["line", "phone", "reason"]]
    assert member_values("+14155550100") == {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "fields": {},
        "timezone": "", "number_timezones": SF_ZONES, "is_community": True,
        "is_daily_subscriber": False,
    }  # fmt: skip
    assert member_values("+14155550101")["first_name"] == "Grace"
    assert Member.objects.count() == 2


def test_headers_match_whatever_their_case_spacing_or_hyphens(writer_class):
    run_import(" MOBILE ;First Name;LAST-NAME;Email\n415.555.0100;Ada;Lovelace;a@example.org\n",
               writer_class)  # fmt: skip

    assert member_values("+14155550100") | {"number_timezones": None} == {
        "first_name": "Ada", "last_name": "Lovelace", "email": "a@example.org", "fields": {},
        "timezone": "", "number_timezones": None, "is_community": True,
        "is_daily_subscriber": False,
    }  # fmt: skip


def test_other_columns_become_merge_fields_without_their_blank_cells(writer_class):
    summary, _ = run_import(
        "Phone,T-Shirt Size,Favourite Colour\n4155550100,M,\n4155550101,,green\n", writer_class
    )

    assert summary.merge_fields == ["t_shirt_size", "favourite_colour"]
    assert member_values("+14155550100")["fields"] == {"t_shirt_size": "M"}
    assert member_values("+14155550101")["fields"] == {"favourite_colour": "green"}


def test_daily_and_timezone_columns_set_the_subscription_and_zone(writer_class):
    run_import(
        "phone,daily,timezone\n"
        "4155550100,Yes,Europe/London\n4155550101,n,\n4155550102,TRUE,\n4155550103,0,\n"
        "4155550104,y,\n4155550105,,\n",
        writer_class,
    )

    daily = dict(Member.objects.values_list("phone", "is_daily_subscriber"))
    assert daily == {
        "+14155550100": True, "+14155550101": False, "+14155550102": True,
        "+14155550103": False, "+14155550104": True, "+14155550105": False,
    }  # fmt: skip
    assert member_values("+14155550100")["timezone"] == "Europe/London"
    assert member_values("+14155550101")["timezone"] == ""


def test_duplicate_phones_in_the_file_are_counted_and_the_last_row_wins(writer_class):
    summary, _ = run_import(
        "phone,first_name,daily,city\n"
        "(415) 555-0100,First,yes,Oakland\n"
        "4155550101,Other,,\n"
        "+14155550100,Second,,\n"
        "415.555.0100,Third,no,\n",
        writer_class,
    )

    assert (summary.rows, summary.created, summary.duplicates) == (4, 2, 2)
    assert member_values("+14155550100") | {"number_timezones": None} == {
        "first_name": "Third", "last_name": "", "email": "", "fields": {}, "timezone": "",
        "number_timezones": None, "is_community": True, "is_daily_subscriber": False,
    }  # fmt: skip
    assert Member.objects.count() == 2


def test_existing_members_are_updated_and_blank_cells_never_erase(writer_class):
    MemberFactory(
        phone="+14155550100", first_name="Ada", last_name="Lovelace", email="ada@example.org",
        fields={"city": "London", "size": "M"}, timezone="Europe/London",
        is_daily_subscriber=True, is_community=False, number_timezones=[],
    )  # fmt: skip
    untouched = MemberFactory(phone="+14155550199", first_name="Not", fields={"a": "b"})
    untouched_before = member_values(untouched.phone)

    summary, _ = run_import(
        "phone,first_name,last_name,email,daily,timezone,city,pet\n"
        "415-555-0100,,King,,,,Paris,cat\n"
        "415-555-0101,New,,,,,,\n",
        writer_class,
    )

    assert (summary.created, summary.updated, summary.duplicates) == (1, 1, 0)
    assert member_values("+14155550100") == {
        "first_name": "Ada", "last_name": "King", "email": "ada@example.org",
        "fields": {"city": "Paris", "size": "M", "pet": "cat"}, "timezone": "Europe/London",
        "number_timezones": SF_ZONES, "is_community": True, "is_daily_subscriber": True,
    }  # fmt: skip
    assert member_values(untouched.phone) == untouched_before
    assert Member.objects.count() == 3


def test_daily_no_switches_an_existing_subscription_off(writer_class):
    MemberFactory(phone="+14155550100", is_daily_subscriber=True)

    run_import("phone,daily\n4155550100,no\n", writer_class)

    assert member_values("+14155550100")["is_daily_subscriber"] is False


def test_bad_rows_are_reported_with_line_raw_phone_and_reason_and_good_rows_land(writer_class):
    long_name = "x" * 101
    summary, report = run_import(
        "phone,first_name,email,daily,timezone\n"
        '4155550100,"Ada\nwith a newline",,,\n'
        "call me,Bob,,,\n"
        "4155550101,Cy,not-an-email,,\n"
        "4155550102,Di,,maybe,\n"
        "4155550103,Ed,,,Mars/Olympus_Mons\n"
        f"4155550104,{long_name},,,\n"
        "555-1234,Fay,,,\n"
        ",Gus,,,\n"
        "4155550105,Hal,,,,surplus\n"
        "4155550106,Ivy,ivy@example.org,yes,America/New_York\n",
        writer_class,
    )

    expected_rejections = [
        ["4", "call me", "Not a phone number."],
        ["5", "4155550101", "invalid email"],
        ["6", "4155550102", "invalid daily value: use yes or no"],
        ["7", "4155550103", "unknown time zone: Mars/Olympus_Mons"],
        ["8", "4155550104", "field too long: first_name has 101 characters (at most 100)"],
        ["9", "555-1234", "Not a valid phone number in United States."],
        ["10", "", "No phone number."],
        [
            "11",
            "4155550105",
            "too many cells: 6 where the header has 5 (a delimiter inside a value that is not "
            "in quotes?)",
        ],
    ]
    assert report == [["line", "phone", "reason"], *expected_rejections]
    assert [list(map(str, row)) for row in summary.rejected_rows] == expected_rejections
    assert (summary.rows, summary.created, summary.rejected) == (10, 2, 8)
    assert set(Member.objects.values_list("phone", flat=True)) == {"+14155550100", "+14155550106"}
    assert member_values("+14155550100")["first_name"] == "Ada\nwith a newline"


def test_error_report_never_holds_a_cell_a_spreadsheet_would_run(writer_class):
    _, report = run_import(
        'phone,name\n"=HYPERLINK(""http://evil.example"",""x"")",a\n@SUM(A1),b\n-1+1,c\n',
        writer_class,
    )

    assert [row[1] for row in report[1:]] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'@SUM(A1)",
        "'-1+1",
    ]


def test_opted_out_and_suppressed_numbers_are_imported_counted_and_never_lifted(writer_class):
    opt_out = OptOutFactory(phone="+14155550100")
    lifted = OptOutFactory(phone="+14155550101", lifted_at=timezone.now())
    suppression = SuppressionFactory(phone="+14155550102")
    elsewhere = OptOutFactory(phone="+14155550199")

    summary, _ = run_import(
        "phone\n4155550100\n4155550101\n4155550102\n4155550103\n4155550100\n", writer_class
    )

    assert counts(summary) == {
        "rows": 5, "created": 4, "updated": 0, "duplicates": 1, "rejected": 0,
        "opted_out": 1, "suppressed": 1,
    }  # fmt: skip
    assert list(OptOut.objects.active().order_by("pk")) == [opt_out, elsewhere]
    assert OptOut.objects.get(pk=lifted.pk).lifted_at == lifted.lifted_at
    assert list(Suppression.objects.active()) == [suppression]
    assert OptOut.objects.count() == 3


def test_event_import_registers_every_row_and_creates_the_event(writer_class):
    existing = MemberFactory(phone="+14155550100", is_community=True)
    MemberFactory(phone="+14155550101", is_community=False)

    summary, _ = run_import(
        "phone\n4155550100\n4155550101\n4155550102\n4155550102\n",
        writer_class,
        event_slug="summer-picnic-2025",
    )

    event = Event.objects.get(slug="summer-picnic-2025")
    assert event.name == "Summer picnic 2025"
    assert (summary.created, summary.updated, summary.registered) == (1, 2, 3)
    assert summary.line().endswith("registered 3 for summer-picnic-2025.")
    assert set(event.members.values_list("phone", flat=True)) == {
        "+14155550100", "+14155550101", "+14155550102",
    }  # fmt: skip
    pools = dict(Member.objects.values_list("phone", "is_community"))
    assert pools == {"+14155550100": True, "+14155550101": False, "+14155550102": False}
    assert existing.registrations.count() == 1


def test_event_import_into_an_existing_event_adds_only_missing_registrations(writer_class):
    event = EventFactory(slug="gala", name="The Gala")
    registration = EventRegistrationFactory(event=event, member=MemberFactory(phone="+14155550100"))

    summary, _ = run_import("phone\n4155550100\n4155550101\n", writer_class, event_slug="gala")

    assert summary.registered == 1
    assert EventRegistration.objects.filter(event=event).count() == 2
    assert EventRegistration.objects.get(pk=registration.pk).registered_at == (
        registration.registered_at
    )
    assert Event.objects.get(pk=event.pk).name == "The Gala"
    assert Event.objects.count() == 1


def test_dry_run_writes_nothing_and_reports_what_the_import_would_do(writer_class):
    MemberFactory(phone="+14155550100", first_name="Ada")
    OptOutFactory(phone="+14155550101")
    content = "phone,first_name\n4155550100,New\n4155550101,Bo\n4155550102,Cy\nbad,Dee\n"
    members_before = list(Member.objects.values())

    dry, dry_report = run_import(content, writer_class, dry_run=True, event_slug="new-event")

    assert list(Member.objects.values()) == members_before
    assert not Event.objects.exists()
    assert not EventRegistration.objects.exists()
    assert dry.line().startswith("Dry run, nothing written: 4 rows: created 2, updated 1,")
    real, real_report = run_import(content, writer_class, event_slug="new-event")
    assert counts(dry) | {"registered": dry.registered} == counts(real) | {
        "registered": real.registered
    }
    assert (real.registered, real.opted_out) == (3, 1)
    assert dry_report == real_report


def test_region_reads_numbers_without_a_country_code(writer_class):
    run_import("phone\n07911 123456\n+1 415 555 0100\n", writer_class, region="gb")

    assert set(Member.objects.values_list("phone", flat=True)) == {"+447911123456", "+14155550100"}
    assert member_values("+447911123456")["number_timezones"] == list(
        normalize("+447911123456", region="GB").timezones
    )


def test_windows_1252_file_is_imported_and_the_summary_says_how_it_was_read(writer_class):
    summary, _ = run_import("phone,first_name\n4155550100,Zoë\n".encode("cp1252"), writer_class)

    assert summary.encoding == "windows-1252"
    assert summary.notes == ["The file is not UTF-8; it was read as Windows-1252."]
    assert member_values("+14155550100")["first_name"] == "Zoë"


def test_utf16_and_bom_files_are_imported(writer_class):
    run_import("phone\tfirst_name\r\n4155550100\tJosé\r\n".encode("utf-16"), writer_class)
    run_import(codecs.BOM_UTF8 + "phone;first_name\n4155550101;Zoë\n".encode(), writer_class)

    assert dict(Member.objects.values_list("phone", "first_name")) == {
        "+14155550100": "José", "+14155550101": "Zoë",
    }  # fmt: skip


def test_file_over_the_size_limit_is_refused_before_reading(writer_class, settings):
    settings.IMPORT_MAX_BYTES = 20

    with pytest.raises(ImportRefused) as refusal:
        run_import("phone\n4155550100\n4155550101\n", writer_class)

    assert refusal.value.message == (
        "The file is 0.0 MB; the largest accepted is 0.0 MB (IMPORT_MAX_BYTES). Split it."
    )
    assert not Member.objects.exists()


def test_file_over_the_row_limit_is_refused_and_nothing_is_written(writer_class, settings):
    settings.IMPORT_MAX_ROWS = 2

    with pytest.raises(ImportRefused) as refusal:
        run_import("phone\n4155550100\n4155550101\n4155550102\n", writer_class)

    assert refusal.value.message == (
        "The file has more than 2 data rows (IMPORT_MAX_ROWS). "
        "Split it into smaller files; nothing was imported."
    )
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"region": "XX"}, "Unknown region 'XX': use a two-letter code such as US."),
        (
            {"event_slug": "no spaces"},
            "Invalid event slug 'no spaces': use letters, numbers, - and _.",
        ),
    ],
)
def test_bad_options_are_refused(writer_class, options, message):
    with pytest.raises(ImportRefused) as refusal:
        run_import("phone\n4155550100\n", writer_class, **options)

    assert refusal.value.message == message
    assert not Member.objects.exists()


def test_header_only_file_imports_nothing_without_failing(writer_class):
    summary, _ = run_import("phone,first_name\n", writer_class)

    assert counts(summary) == dict.fromkeys(counts(summary), 0)
    assert not Member.objects.exists()


def test_many_merge_columns_are_all_kept(writer_class):
    header = ",".join(f"extra{index}" for index in range(120))
    values = ",".join(str(index) for index in range(120))

    run_import(f"phone,{header}\n4155550100,{values}\n", writer_class)

    assert member_values("+14155550100")["fields"] == {
        f"extra{index}": str(index) for index in range(120)
    }


# Under pytest-xdist the test process runs threads of its own, which fork() warns about.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_validation_in_worker_processes_gives_the_same_result(writer_class):
    lines = [f"415555{index:04d},Name{index}" for index in range(3000)]
    content = "phone,first_name\n" + "\n".join([*lines, "bad,x", lines[5]]) + "\n"

    summary, report = run_import(content, writer_class, validation_processes=2)

    assert counts(summary) == {
        "rows": 3002, "created": 3000, "updated": 0, "duplicates": 1, "rejected": 1,
        "opted_out": 0, "suppressed": 0,
    }  # fmt: skip
    assert report[1:] == [["3002", "bad", "Not a phone number."]]
    assert Member.objects.count() == 3000
