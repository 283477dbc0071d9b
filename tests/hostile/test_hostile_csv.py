"""Hostile CSV files through the real import service (the one the admin and the
command use): each is refused with a message that names the problem, or imported with
its bad rows rejected and reported; never a crash, a hang or a half-written row."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import random
from typing import Any

import pytest

from members.importing import reader
from members.importing.reader import ImportRefused
from members.importing.services import import_members
from members.models import Member

pytestmark = pytest.mark.django_db

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000200015e27a3b90000000049454e44ae426082"
)


def run_import(data: bytes, **options: Any) -> tuple[Any, list[list[str]]]:
    report = io.StringIO()
    options.setdefault("region", "US")
    summary = import_members(file=io.BytesIO(data), error_report=report, **options)
    return summary, list(csv.reader(io.StringIO(report.getvalue())))[1:]


def refusal(data: bytes, **options: Any) -> str:
    before = Member.objects.count()
    with pytest.raises(ImportRefused) as raised:
        run_import(data, **options)
    assert Member.objects.count() == before
    return raised.value.message


def members() -> dict[str, dict[str, Any]]:
    return {
        member.phone: {"first_name": member.first_name, "fields": member.fields}
        for member in Member.objects.all()
    }


# --- Files refused as a whole ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "named"),
    [
        pytest.param(
            "phone,first_name\n4155550100,Ada\n".encode("utf-16-le"),
            "UTF-16 text without a byte order mark",
            id="utf16-le-no-bom",
        ),
        pytest.param(
            "phone,first_name\n4155550100,Ada\n".encode("utf-16-be"),
            "UTF-16 text without a byte order mark",
            id="utf16-be-no-bom",
        ),
        pytest.param(PNG, "binary file", id="png"),
        pytest.param(random.Random(7).randbytes(4096), "binary file", id="random-bytes"),
        pytest.param(gzip.compress(b"phone\n4155550100\n", mtime=0), "binary file", id="gzip"),
        pytest.param(b"PK\x03\x04\x14\x00\x00\x00", "Excel workbook", id="xlsx-zip"),
        pytest.param(b"phone,first_name\n4155550100,A\x00da\n", "NUL bytes", id="nul-in-sample"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\n\r\n  \n", "empty", id="blank-lines-only"),
        pytest.param(codecs.BOM_UTF8, "empty", id="bom-only"),
        pytest.param(codecs.BOM_UTF16_LE, "empty", id="utf16-bom-only"),
        pytest.param(b"first_name,last_name\nAda,Lovelace\n", "No phone column", id="no-phone"),
    ],
)
def test_unreadable_file_is_refused_with_a_message_naming_the_problem(data, named):
    assert named in refusal(data)


def test_a_header_of_a_million_columns_is_refused_quickly():
    message = refusal(b"phone" + b"," * 1_000_000 + b"\n4155550100\n")
    assert "1000001 columns" in message
    assert "at most 200" in message


def test_a_file_over_import_max_bytes_is_refused_before_it_is_read(settings):
    data = b"phone,first_name\n4155550100,Ada\n"
    settings.IMPORT_MAX_BYTES = len(data) - 1  # exactly one byte over
    message = refusal(data)
    assert "IMPORT_MAX_BYTES" in message


def test_a_file_at_import_max_bytes_exactly_is_imported(settings):
    data = b"phone,first_name\n4155550100,Ada\n"
    settings.IMPORT_MAX_BYTES = len(data)
    summary, _ = run_import(data)
    assert summary.created == 1


def test_too_many_rows_refuse_the_file_and_write_nothing(settings):
    settings.IMPORT_MAX_ROWS = 2
    message = refusal(b"phone\n4155550100\n4155550101\n4155550102\n")
    assert "IMPORT_MAX_ROWS" in message
    assert not Member.objects.exists()


# --- Files imported, bad rows reported -----------------------------------------------------


def test_latin1_file_is_read_as_windows_1252_and_says_so():
    summary, report = run_import("phone,first_name\n4155550100,José\n".encode("latin-1"))
    assert (summary.created, summary.rejected, report) == (1, 0, [])
    assert reader.WINDOWS_1252_NOTE in summary.notes
    assert members()["+14155550100"]["first_name"] == "José"


def test_shift_jis_file_is_not_taken_for_utf8_and_the_summary_says_so():
    data = "phone,first_name\n4155550100,テスト\n".encode("shift_jis")
    summary, _ = run_import(data)
    assert summary.encoding == "windows-1252"
    assert reader.WINDOWS_1252_NOTE in summary.notes
    assert summary.rows == 1
    assert summary.created + summary.rejected == 1


def test_utf16_with_bom_is_imported():
    data = codecs.BOM_UTF16_LE + "phone,first_name\n4155550100,Zoë\n".encode("utf-16-le")
    summary, _ = run_import(data)
    assert (summary.encoding, summary.created) == ("utf-16", 1)
    assert members()["+14155550100"]["first_name"] == "Zoë"


@pytest.mark.parametrize("content", [b"phone,first_name\n", b"phone,first_name"])
def test_a_header_only_file_imports_nothing_and_says_so(content):
    summary, report = run_import(content)
    assert (summary.rows, summary.created, summary.rejected, report) == (0, 0, 0, [])
    assert "0 rows" in summary.line()


def test_bom_and_header_only_imports_nothing():
    summary, report = run_import(codecs.BOM_UTF8 + b"phone,first_name\r\n")
    assert (summary.encoding, summary.rows, summary.created, report) == ("utf-8-sig", 0, 0, [])


FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1)", "-1+1", "@x"]


def test_formulas_in_cells_are_stored_as_text_and_neutralised_in_the_error_report():
    rows = [
        f'4155550100,"{FORMULAS[0]}",{FORMULAS[1]}',
        f"4155550101,{FORMULAS[2]},{FORMULAS[3]}",
        *(f'"{formula}",Bad,x' for formula in FORMULAS),
    ]
    summary, report = run_import(("phone,first_name,note\n" + "\n".join(rows) + "\n").encode())

    assert (summary.created, summary.rejected) == (2, 4)
    assert members() == {
        "+14155550100": {"first_name": FORMULAS[0], "fields": {"note": FORMULAS[1]}},
        "+14155550101": {"first_name": FORMULAS[2], "fields": {"note": FORMULAS[3]}},
    }
    assert [phone for _, phone, _ in report] == ["'" + formula for formula in FORMULAS]
    for line, _, reason in report:
        assert not line.startswith(("=", "+", "-", "@"))
        assert not reason.startswith(("=", "+", "-", "@"))


def test_formula_in_a_rejected_rows_reason_is_neutralised():
    # The reason echoes the time zone as written: it must not start a formula either.
    summary, report = run_import(b"timezone,phone\n=1+1,4155550100\n")
    assert summary.rejected == 1
    assert report[0][2] == "unknown time zone: =1+1"
    assert report[0][1] == "4155550100"


def test_mixed_line_endings_in_one_file_are_all_line_ends():
    data = b"phone,first_name\r\n4155550100,Ada\n4155550101,Bob\r4155550102,Cy\r\n4155550103,Di\n"
    summary, report = run_import(data)
    assert (summary.created, summary.rejected, report) == (4, 0, [])
    assert members()["+14155550101"]["first_name"] == "Bob"


def test_line_numbers_stay_right_with_mixed_line_ends_and_bad_bytes():
    data = b"phone,first_name\r4155550100,Ada\n4155550101,Jos\xe9\r\nnope,Bob\r4155550102,Cy\n"
    summary, report = run_import(data)
    assert summary.created == 3
    assert report == [["4", "nope", report[0][2]]]


def test_a_nul_after_the_detection_sample_rejects_only_its_row():
    good = "".join(f"41555{number:05d},Name{number}\n" for number in range(5000))
    assert len(good) > reader.SAMPLE_BYTES
    data = ("phone,first_name\n" + good).encode() + b"4155559999,Ev\x00e\n4155559998,Fay\n"
    summary, report = run_import(data, validation_processes=0)
    assert summary.created == 5001
    assert summary.rejected == 1
    assert report[0][1] == "4155559999"
    assert not Member.objects.filter(phone="+14155559999").exists()
    assert Member.objects.filter(phone="+14155559998", first_name="Fay").exists()


def test_a_nul_in_a_utf16_file_rejects_only_its_row():
    text = "phone,first_name\n4155550100,Ada\n4155550101,N\x00ul\n"
    summary, report = run_import(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert (summary.created, summary.rejected) == (1, 1)
    assert report[0][:2] == ["3", "4155550101"]
    assert "NUL" in report[0][2]


def test_a_ten_megabyte_cell_rejects_its_row_and_keeps_the_others():
    data = (
        b"phone,first_name\n4155550100,Ada\n4155550101,"
        + b"x" * (10 * 1024 * 1024)
        + b"\n4155550102,Cy\n"
    )
    summary, report = run_import(data, validation_processes=0)
    assert (summary.created, summary.rejected) == (2, 1)
    assert "line too long" in report[0][2]
    assert set(members()) == {"+14155550100", "+14155550102"}


def test_a_ten_megabyte_quoted_cell_across_lines_rejects_its_row():
    big = b"x" * (200 * 1024) + b"\n"
    data = b'phone,first_name\n4155550100,Ada\n4155550101,"' + big * 50 + b'"\n'
    summary, _ = run_import(data, validation_processes=0)
    assert summary.rejected >= 1
    assert set(members()) == {"+14155550100"}
    assert summary.rows == summary.created + summary.rejected


def test_a_quote_never_closed_is_reported_not_imported_half():
    data = b'phone,first_name\n4155550100,Ada\n4155550101,"Bob\n4155550102,Cy\n'
    summary, report = run_import(data)
    # The quote swallows the rest of the file: that is one unreadable row, not Bob with
    # the following lines as his name.
    assert set(members()) == {"+14155550100"}
    assert (summary.created, summary.rejected) == (1, 1)
    assert report == [["3", "", 'unreadable row: a quote (") opened in this row is never closed']]


def test_a_quote_never_closed_in_the_header_refuses_the_file():
    assert "never closed" in refusal(b'phone,"first_name\n4155550100,Ada\n')


def test_quoted_values_over_several_lines_are_still_read():
    data = b'phone,first_name\n4155550100,"Ada\nLovelace"\n"4155550101","Bob"'
    summary, report = run_import(data)
    assert (summary.created, report) == (2, [])
    assert members()["+14155550100"]["first_name"] == "Ada\nLovelace"


def test_a_partly_bad_file_imports_the_good_rows_and_reports_the_bad_ones():
    data = (
        "phone,first_name,email,daily,timezone\n"
        "4155550100,Ada,ada@example.org,yes,America/New_York\n"
        "not a phone,Bob,,,\n"
        "4155550101,Cy,not-an-email,,\n"
        "4155550102,Di,,maybe,\n"
        "4155550103,Ed,,,Mars/Olympus\n"
        f"4155550104,{'x' * 5000},,,\n"
        "4155550105,Flo,,,\n"
    ).encode()
    summary, report = run_import(data)
    assert (summary.created, summary.rejected) == (2, 5)
    assert set(members()) == {"+14155550100", "+14155550105"}
    reasons = [reason for _, _, reason in report]
    assert any("invalid email" in reason for reason in reasons)
    assert any("daily" in reason for reason in reasons)
    assert any("unknown time zone" in reason for reason in reasons)
    assert any("field too long" in reason for reason in reasons)


def test_a_row_with_too_many_cells_is_rejected_whole():
    summary, report = run_import(b"phone,first_name\n4155550100,Ada,extra\n")
    assert (summary.created, summary.rejected) == (0, 1)
    assert "too many cells" in report[0][2]
    assert not Member.objects.exists()


def test_unpaired_surrogate_escapes_and_control_characters_do_not_break_the_writer():
    data = "phone,first_name,note\n4155550100,A\u200bda,\u202eevil\n4155550101,\x7f\x1b[31m,\x0b\n"
    summary, _ = run_import(data.encode())
    assert summary.created == 2
