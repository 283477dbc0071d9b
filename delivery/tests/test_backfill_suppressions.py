"""``manage.py backfill_suppressions``: the rules over past failures, safe to run again."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from delivery.models import Batch, Message
from delivery.tests.factories import MessageFactory
from members.models import OptOut, Suppression
from members.tests.factories import SuppressionFactory

pytestmark = pytest.mark.django_db
Status = Message.Status


def phone(number: int) -> str:
    return f"+1415555{number:04d}"


def failed(number: int, code: int, *, days_ago: float = 1) -> Message:
    return MessageFactory(
        phone=phone(number),
        status=Status.UNDELIVERED,
        error_code=code,
        error_message=f"Twilio says {code}",
        failed_at=timezone.now() - timedelta(days=days_ago),
    )


def delivered(number: int, *, days_ago: float = 1) -> None:
    MessageFactory(
        phone=phone(number),
        status=Status.DELIVERED,
        delivered_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def history():
    """Numbers 1-10, each with a past that calls for one thing (or nothing)."""
    failed(1, 21211, days_ago=100)  # invalid: proof enough however old
    for days_ago in (20, 10, 1):
        failed(2, 30003, days_ago=days_ago)  # unreachable three times in a row
    for days_ago in (10, 1):
        failed(3, 30003, days_ago=days_ago)  # only twice: nothing
        failed(4, 30004, days_ago=days_ago)  # blocked twice
    failed(5, 21610)  # opted out at the carrier
    for days_ago in (3, 2, 1):
        failed(6, 30007, days_ago=days_ago)  # our fault: nothing
    failed(7, 30006, days_ago=5)
    delivered(7, days_ago=2)  # delivered since: nothing
    failed(8, 21614)
    SuppressionFactory(phone=phone(8), reason=Suppression.Reason.STAFF, error_codes=[])
    failed(9, 30005, days_ago=3)
    SuppressionFactory(phone=phone(9), lifted_at=timezone.now() - timedelta(days=1))
    for days_ago in (50, 45, 40):
        failed(10, 30003, days_ago=days_ago)  # outside the window: nothing


def everything() -> dict[str, list[dict]]:
    return {
        "suppressions": list(Suppression.objects.order_by("id").values()),
        "opt_outs": list(OptOut.objects.order_by("id").values()),
        "messages": list(Message.objects.order_by("id").values()),
        "batches": list(Batch.objects.order_by("id").values()),
    }


def backfill(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("backfill_suppressions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_backfill_blocks_what_the_rules_call_for_and_nothing_else(history):
    before = everything()

    out, err = backfill("--chunk-size", "2")

    assert list(
        Suppression.objects.active()
        .order_by("phone")
        .values_list("phone", "reason", "error_codes", "created_by")
    ) == [
        (phone(1), "invalid", [21211], None),
        (phone(2), "unreachable", [30003], None),
        (phone(4), "blocked", [30004], None),
        (phone(8), "staff", [], None),
    ]
    assert list(OptOut.objects.values_list("phone", "source", "reason", "lifted_at")) == [
        (phone(5), "carrier", "Twilio error 21610: The recipient replied STOP to this sender", None)
    ]
    after = everything()
    assert after["suppressions"][:2] == before["suppressions"]  # the staff and lifted rows
    assert len(after["suppressions"]) == 5
    assert (after["messages"], after["batches"]) == (before["messages"], before["batches"])
    assert out == (
        "Numbers with failures checked: 9\n"
        "Suppressions created: 3 (blocked by the carrier: 1, not a valid number: 1, "
        "unreachable: 1)\n"
        "Carrier opt-outs recorded: 1\n"
    )
    assert (
        err.splitlines()[-1] == "9 numbers checked: 3 suppressions and 1 carrier opt-outs created"
    )


def test_a_second_run_changes_nothing(history):
    backfill()
    before = everything()

    out, _ = backfill()

    assert everything() == before
    assert out == (
        "Numbers with failures checked: 9\nSuppressions created: 0\nCarrier opt-outs recorded: 0\n"
    )


def test_a_dry_run_writes_nothing_and_reports_what_a_real_run_would_do(history):
    before = everything()

    out, err = backfill("--dry-run")

    assert everything() == before
    assert out == (
        "Numbers with failures checked: 9\n"
        "Suppressions would be created: 3 (blocked by the carrier: 1, not a valid number: 1, "
        "unreachable: 1)\n"
        "Carrier opt-outs would be recorded: 1\n"
        "Dry run: nothing was written.\n"
    )
    assert (
        err.splitlines()[-1] == "9 numbers checked: 3 suppressions and 1 carrier opt-outs to create"
    )
    real_out, _ = backfill()
    assert real_out.splitlines()[1:3] == [
        "Suppressions created: 3 (blocked by the carrier: 1, not a valid number: 1, "
        "unreachable: 1)",
        "Carrier opt-outs recorded: 1",
    ]


def test_since_limits_the_numbers_looked_at():
    failed(1, 21211, days_ago=20)
    failed(2, 21211, days_ago=2)
    since = (timezone.localdate() - timedelta(days=5)).isoformat()

    out, _ = backfill("--since", since)

    assert list(Suppression.objects.values_list("phone", flat=True)) == [phone(2)]
    assert out.splitlines()[0] == "Numbers with failures checked: 1"


def test_a_bad_date_is_refused():
    with pytest.raises(CommandError, match="'last week' is not a date like 2025-01-31"):
        backfill("--since", "last week")


def test_nothing_to_do_is_said_plainly():
    out, _ = backfill()
    assert out == (
        "Numbers with failures checked: 0\nSuppressions created: 0\nCarrier opt-outs recorded: 0\n"
    )


@pytest.mark.django_db(transaction=True)
def test_it_commits_as_it_goes_outside_a_transaction():
    """As in production: autocommit, the cursor over numbers stays open across commits."""
    for number in range(5):
        failed(number, 21211)

    out, _ = backfill("--chunk-size", "1")

    assert Suppression.objects.active().count() == 5
    assert out.splitlines()[:2] == [
        "Numbers with failures checked: 5",
        "Suppressions created: 5 (not a valid number: 5)",
    ]
