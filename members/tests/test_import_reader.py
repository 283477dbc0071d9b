"""Reading CSV files: encodings, delimiters, headers, line numbers, refusals."""

from __future__ import annotations

import codecs
import io

import pytest

from members.importing import reader
from members.importing.reader import CsvFile, ImportRefused
from members.importing.rows import ColumnMap, normalize_header


def read(data: bytes) -> tuple[CsvFile, list[tuple[int, list[str], str]]]:
    csv_file = CsvFile(io.BytesIO(data))
    return csv_file, list(csv_file.rows())


def test_utf8_with_byte_order_mark_reads_the_first_header_cleanly():
    csv_file, rows = read(codecs.BOM_UTF8 + "phone,first_name\n4155550100,Zoë\n".encode())

    assert csv_file.encoding == "utf-8-sig"
    assert csv_file.raw_headers == ["phone", "first_name"]
    assert rows == [(2, ["4155550100", "Zoë"], "")]
    assert csv_file.notes == []


@pytest.mark.parametrize(
    ("header", "separator", "delimiter_name"),
    [("phone;name", ";", "semicolon"), ("phone\tname", "\t", "tab"), ("phone,name", ",", "comma")],
)
def test_delimiter_is_detected_from_the_header_line(header, separator, delimiter_name):
    csv_file, rows = read(f"{header}\n415 555 0100{separator}Ada, Countess\n".encode())

    assert csv_file.delimiter_name == delimiter_name
    if separator == ",":
        assert rows == [(2, ["415 555 0100", "Ada", "Countess"], "")]
    else:
        assert rows == [(2, ["415 555 0100", "Ada, Countess"], "")]


def test_quoted_fields_keep_commas_and_newlines_and_rows_keep_their_starting_line():
    data = (
        b"phone,name,notes\r\n"
        b'4155550100,"Lovelace, Ada","first line\r\nsecond line\r\nthird"\r\n'
        b"\r\n"
        b'4155550101,Grace,"say ""hi"""\r\n'
    )

    _, rows = read(data)

    assert rows == [
        (2, ["4155550100", "Lovelace, Ada", "first line\r\nsecond line\r\nthird"], ""),
        (6, ["4155550101", "Grace", 'say "hi"'], ""),
    ]


def test_blank_lines_before_the_header_and_between_rows_are_skipped_but_counted():
    _, rows = read(b"\n\nphone\n\n4155550100\n,\n  \n4155550101\n")

    assert rows == [(5, ["4155550100"], ""), (8, ["4155550101"], "")]


def test_file_with_old_mac_line_endings_is_split_on_carriage_returns():
    _, rows = read(b"phone,name\r4155550100,Ada\r4155550101,Grace\r")

    assert rows == [(2, ["4155550100", "Ada"], ""), (3, ["4155550101", "Grace"], "")]


def test_utf16_file_with_byte_order_mark_is_converted():
    text = "phone\tfirst_name\r\n4155550100\tJosé\r\n"

    csv_file, rows = read(text.encode("utf-16"))

    assert csv_file.encoding == "utf-16"
    assert csv_file.delimiter_name == "tab"
    assert rows == [(2, ["4155550100", "José"], "")]


def test_file_that_does_not_start_as_utf8_is_read_as_windows_1252_and_says_so():
    csv_file, rows = read("phone,name\n4155550100,Zoë “Z”\n".encode("cp1252"))

    assert csv_file.encoding == "windows-1252"
    assert csv_file.notes == ["The file is not UTF-8; it was read as Windows-1252."]
    assert rows == [(2, ["4155550100", "Zoë “Z”"], "")]


def test_undecodable_bytes_after_a_good_start_spoil_only_their_row():
    good_rows = "".join(f"41555{index:05d},Name {index}\n" for index in range(7000))
    data = ("phone,name\n" + good_rows).encode() + b"4155559999,Bad \xff name\n4155559998,Fine\n"
    assert len(data) > reader.SAMPLE_BYTES

    csv_file, rows = read(data)

    assert csv_file.encoding == "utf-8"
    assert len(rows) == 7002
    assert rows[-2] == (
        7002,
        ["4155559999", "Bad \ufffd name"],
        "undecodable bytes: this row is not valid UTF-8 text",
    )
    assert rows[-1] == (7003, ["4155559998", "Fine"], "")
    assert all(problem == "" for _, _, problem in rows[:-2])


def test_a_huge_field_is_rejected_as_an_unreadable_row_and_reading_goes_on():
    huge = "x" * 200_000
    _, rows = read(f'phone,notes\n4155550100,"{huge}"\n4155550101,ok\n'.encode())

    assert rows == [
        (2, [], "unreadable row: field larger than field limit (131072)"),
        (3, ["4155550101", "ok"], ""),
    ]


def test_an_overlong_line_is_skipped_and_rejected_alone(monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 64)

    _, rows = read(b"phone,notes\n4155550100,a\n4155550101," + b"y" * 500 + b"\n4155550102,c\n")

    assert [(line, problem) for line, _, problem in rows] == [
        (2, ""),
        (3, reader.LINE_TOO_LONG),
        (4, ""),
    ]
    assert rows[2][1] == ["4155550102", "c"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty: there is no header line."),
        (b"\n \n\r\n", "The file is empty: there is no header line."),
        (codecs.BOM_UTF8, "The file is empty: there is no header line."),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "This is a binary file, not a CSV text file (it contains NUL bytes). "
            "Save the spreadsheet as \u201cCSV UTF-8\u201d and upload that file.",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00",
            "This looks like an Excel workbook or another zip file, not a CSV file. "
            "Save the spreadsheet as \u201cCSV UTF-8\u201d and upload that file.",
        ),
        (
            "phone\n4155550100\n".encode("utf-16-le"),
            "This looks like UTF-16 text without a byte order mark. "
            "Save the spreadsheet as \u201cCSV UTF-8\u201d and upload that file.",
        ),
    ],
    ids=["empty", "blank-lines", "only-a-bom", "binary", "xlsx", "utf16-without-bom"],
)
def test_unreadable_files_are_refused_with_the_reason(data, message):
    with pytest.raises(ImportRefused) as refusal:
        CsvFile(io.BytesIO(data))

    assert refusal.value.message == message


def test_header_with_an_absurd_number_of_columns_is_refused():
    header = ",".join(f"column{index}" for index in range(201))

    with pytest.raises(ImportRefused) as refusal:
        CsvFile(io.BytesIO(f"phone,{header}\n".encode()))

    assert refusal.value.message == (
        "The header has 202 columns; at most 200 are supported. Is this the right file?"
    )


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Phone", "phone"),
        (" First Name ", "first_name"),
        ("LAST-NAME", "last_name"),
        ("Phone  Number", "phone_number"),
        ("T-Shirt Size", "t_shirt_size"),
    ],
)
def test_headers_are_matched_ignoring_case_spaces_and_hyphens(raw, normalized):
    assert normalize_header(raw) == normalized


@pytest.mark.parametrize("phone_header", ["Phone", "MOBILE", "Phone Number", "cell"])
def test_any_of_the_phone_headers_names_the_phone_column(phone_header):
    columns = ColumnMap.from_header(["Name", phone_header])

    assert columns.phone == 1
    assert columns.merge_keys == ("name",)


def test_columns_map_known_names_and_keep_every_other_column_as_a_merge_field():
    columns = ColumnMap.from_header(
        ["phone", "First Name", "last_name", "Email", "Daily", "Time Zone", "mobile", "City",
         "", "city"]
    )  # fmt: skip

    assert (columns.phone, columns.first_name, columns.last_name) == (0, 1, 2)
    assert (columns.email, columns.daily, columns.timezone) == (3, 4, 5)
    assert columns.merge_fields == (("mobile", 6), ("city", 7), ("column_9", 8), ("city_2", 9))


def test_file_without_a_phone_column_is_refused_naming_the_headers_found():
    with pytest.raises(ImportRefused) as refusal:
        ColumnMap.from_header(["Name", "Email", ""])

    assert refusal.value.message == (
        "No phone column: name one column phone, mobile, phone_number or cell. "
        "Headers found: 'Name', 'Email'."
    )
