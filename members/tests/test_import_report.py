"""The formula-safe CSV writer that the rejected-rows report (and later exports) use."""

from __future__ import annotations

import csv
import io

import pytest

from members.spreadsheet import FormulaSafeCsvWriter, formula_safe


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+14155550100", "'+14155550100"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ada = 1", "Ada = 1"),
        ("4155550100", "4155550100"),
        ("", ""),
        (None, ""),
        (12, "12"),
        (-3, "'-3"),
    ],
)
def test_cells_a_spreadsheet_would_run_get_a_leading_quote(value, written):
    assert formula_safe(value) == written


def test_writer_quotes_every_cell_of_every_row():
    stream = io.StringIO()
    writer = FormulaSafeCsvWriter(stream)

    writer.writerow(["line", "phone", "reason"])
    writer.writerows([[3, '=HYPERLINK("http://x")', "Not a phone number."]])

    assert list(csv.reader(io.StringIO(stream.getvalue()))) == [
        ["line", "phone", "reason"],
        ["3", '\'=HYPERLINK("http://x")', "Not a phone number."],
    ]
