"""CSV for people to open in a spreadsheet, where no cell can ever run as a formula.

A spreadsheet treats a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some of
them, a tab or carriage return) as a formula, and a formula can run commands or leak data
("CSV injection"). Every export that may carry text from outside (an uploaded file, an
SMS reply, a member's name) writes its cells through :func:`formula_safe`, which puts a
single quote in front: spreadsheets show such a cell as plain text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> str:
    """The value as text that a spreadsheet shows as text, never runs."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


class FormulaSafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`formula_safe`."""

    def __init__(self, stream: TextIO, **csv_options: Any) -> None:
        self._writer = csv.writer(stream, **csv_options)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([formula_safe(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)
