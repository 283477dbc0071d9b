"""``manage.py import_members``: summary line, rejected rows, options and exit codes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from members.importing import services
from members.management.commands import import_members as command_module
from members.models import Event, Member
from members.tests.factories import OptOutFactory

pytestmark = pytest.mark.django_db

CONTENT = (
    "Phone,First Name,City\n"
    "(415) 555-0100,Ada,Oakland\n"
    "call me,Bob,\n"
    "415.555.0101,Cy,\n"
    "+14155550100,Ada,\n"
)


@pytest.fixture
def members_csv(tmp_path: Path) -> Path:
    path = tmp_path / "members.csv"
    path.write_text(CONTENT, encoding="utf-8")
    return path


def run_command(*arguments: str) -> tuple[int, str, str]:
    """Run the command; return the exit code ``manage.py`` would give, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("import_members", *arguments, stdout=stdout, stderr=stderr)
    except CommandError as error:
        # What BaseCommand.run_from_argv does with it.
        stderr.write(f"CommandError: {error}\n")
        return error.returncode, stdout.getvalue(), stderr.getvalue()
    return 0, stdout.getvalue(), stderr.getvalue()


def test_command_prints_one_summary_line_and_the_first_rejected_rows(members_csv):
    OptOutFactory(phone="+14155550101")

    exit_code, output, _ = run_command(str(members_csv))

    assert exit_code == 0
    assert output.splitlines() == [
        "Imported: 4 rows: created 2, updated 0, duplicates 1, rejected 1, opted out 1, "
        "suppressed 0.",
        "Rejected rows (first 1 of 1):",
        "  line 3: 'call me': Not a phone number.",
    ]
    # Line 5 repeats line 2's phone and wins whole: its blank city leaves nothing to merge.
    assert dict(Member.objects.values_list("phone", "first_name")) == {
        "+14155550100": "Ada", "+14155550101": "Cy",
    }  # fmt: skip


def test_dry_run_reports_the_same_counts_and_writes_nothing(members_csv):
    exit_code, output, _ = run_command(str(members_csv), "--dry-run")

    assert exit_code == 0
    assert output.splitlines()[0] == (
        "Dry run, nothing written: 4 rows: created 2, updated 0, duplicates 1, rejected 1, "
        "opted out 0, suppressed 0."
    )
    assert not Member.objects.exists()


def test_event_and_region_options(tmp_path):
    path = tmp_path / "gala.csv"
    path.write_text("mobile\n07911 123456\n", encoding="utf-8")

    exit_code, output, _ = run_command(str(path), "--event", "spring-gala", "--region", "GB")

    assert exit_code == 0
    assert output.splitlines() == [
        "Imported: 1 rows: created 1, updated 0, duplicates 0, rejected 0, opted out 0, "
        "suppressed 0, registered 1 for spring-gala."
    ]
    event = Event.objects.get(slug="spring-gala")
    assert list(event.members.values_list("phone", "is_community")) == [("+447911123456", False)]


def test_report_option_writes_every_rejected_row_formula_safe(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("phone\n=1+2\n4155550100\n-3\n", encoding="utf-8")
    report = tmp_path / "rejected.csv"

    exit_code, output, _ = run_command(str(path), "--report", str(report))

    assert exit_code == 0
    assert output.splitlines()[-1] == f"Every rejected row is in {report}."
    with report.open(encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [
            ["line", "phone", "reason"],
            ["2", "'=1+2", "Not a phone number."],
            ["4", "'-3", "Not a phone number."],
        ]


def test_the_command_prints_at_most_twenty_rejected_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("phone\n" + "nope\n" * 25, encoding="utf-8")

    _, output, _ = run_command(str(path))

    lines = output.splitlines()
    assert lines[1] == "Rejected rows (first 20 of 25):"
    assert len(lines) == 22


def test_progress_goes_to_stderr(members_csv, monkeypatch):
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    monkeypatch.setattr(command_module, "PROGRESS_EVERY_SECONDS", 0)

    _, _, errors = run_command(str(members_csv))

    # The file is read in blocks of a megabyte: this small one at once.
    assert errors.splitlines() == [
        "read 2 rows (100%)",
        "read 4 rows (100%)",
        "read 4 rows (100%)",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01binary", "This is a binary file, not a CSV text file (it contains NUL bytes)."),
        (b"name\nAda\n", "No phone column: name one column phone, mobile, phone_number or cell."),
        (b"", "The file is empty: there is no header line."),
    ],
)
def test_exit_code_is_non_zero_only_when_nothing_could_be_read(tmp_path, content, message):
    path = tmp_path / "members.csv"
    path.write_bytes(content)

    exit_code, output, errors = run_command(str(path))

    assert exit_code == 1
    assert output == ""
    assert errors.startswith(f"CommandError: {path}: {message}")
    assert not Member.objects.exists()


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="No such file or directory"):
        call_command("import_members", str(tmp_path / "nowhere.csv"))
