"""Failure rules: which failures block a number, when, and that nothing else happens."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.backends.base import SendOutcome
from delivery.claims import AttemptRecord, SendRecord, claim_due_messages, record_results
from delivery.errors import PROVIDER_ERRORS
from delivery.models import Batch, Message
from delivery.status import apply_provider_status, record_provider_status
from delivery.suppression import (
    Action,
    Failure,
    apply_failure_rules,
    create_blocks,
    decide_blocks,
    rule_for,
)
from delivery.tests.factories import BatchFactory, MessageFactory
from members.models import OptOut, Suppression
from members.tests.factories import OptOutFactory, SuppressionFactory, admin_user

pytestmark = pytest.mark.django_db
Status = Message.Status
PHONE = "+14155550101"
OTHER_PHONE = "+14155550102"


def failed(
    code: int,
    *,
    phone: str = PHONE,
    days_ago: float = 0,
    status: str = Status.UNDELIVERED,
    message: str = "",
    batch: Batch | None = None,
) -> Message:
    extra = {"batch": batch} if batch is not None else {}
    return MessageFactory(
        phone=phone,
        status=status,
        error_code=code,
        error_message=message or f"Twilio says {code}",
        failed_at=timezone.now() - timedelta(days=days_ago),
        **extra,
    )


def delivered(*, phone: str = PHONE, days_ago: float = 0) -> Message:
    return MessageFactory(
        phone=phone,
        status=Status.DELIVERED,
        delivered_at=timezone.now() - timedelta(days=days_ago),
    )


def run_rules(*messages: Message):
    return apply_failure_rules(
        failures=[
            Failure(message.phone, message.error_code, message.error_message, message.batch_id)
            for message in messages
        ]
    )


def suppressions() -> list[tuple]:
    return list(
        Suppression.objects.order_by("phone", "id").values_list(
            "phone", "reason", "error_codes", "lifted_at"
        )
    )


def opt_outs() -> list[tuple]:
    return list(
        OptOut.objects.order_by("phone", "id").values_list("phone", "source", "reason", "lifted_at")
    )


def batch_flags() -> list[tuple]:
    return list(Batch.objects.order_by("id").values_list("id", "is_paused", "pause_reason"))


# --- The table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (21610, Action.OPT_OUT),
        *((code, Action.SUPPRESS) for code in (21211, 21614, 30005, 30006, 30004, 30003, 30008)),
        *((code, Action.PAUSE_BATCH) for code in (30007, 30034, 30032, 21408, 21612, 20003, 30002)),
        (20429, Action.NOTHING),  # our rate limit at Twilio: nothing about the number
        (30010, Action.NOTHING),  # a code we do not know
        (None, Action.NOTHING),
    ],
)
def test_each_error_code_maps_to_one_action(code, action):
    assert rule_for(code).action == action


def test_every_suppression_reason_in_the_error_table_is_a_suppression_reason():
    reasons = {error.suppress_as for error in PROVIDER_ERRORS.values() if error.suppress_as}
    assert reasons == {"invalid", "landline", "unreachable", "blocked"}
    assert reasons <= set(Suppression.Reason.values)


# --- Each class of error -----------------------------------------------------------------


def test_carrier_opt_out_records_an_opt_out_from_the_carrier():
    message = failed(21610, status=Status.FAILED, message="Attempt to send to unsubscribed")

    outcome = run_rules(message)

    assert opt_outs() == [
        (
            PHONE,
            OptOut.Source.CARRIER,
            "Twilio error 21610: The recipient replied STOP to this sender",
            None,
        )
    ]
    assert suppressions() == []
    assert [(block.phone, block.action) for block in outcome.blocks] == [(PHONE, Action.OPT_OUT)]
    assert outcome.paused_batch_ids == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [(21211, "invalid"), (21614, "landline"), (30005, "invalid"), (30006, "landline")],
)
def test_a_permanent_failure_suppresses_at_once_with_its_code_and_message(code, reason):
    message = failed(code, message="The provider's own words")
    bystander = delivered(phone=OTHER_PHONE)

    run_rules(message)

    assert suppressions() == [(PHONE, reason, [code], None)]
    detail = Suppression.objects.get().detail.splitlines()
    assert detail[0] == "Suppressed automatically after 1 failed message, none delivered since:"
    assert detail[1].endswith(
        f": error {code}, {PROVIDER_ERRORS[code].reason}. Twilio said: The provider's own words"
    )
    assert len(detail) == 2
    assert opt_outs() == []
    assert not Suppression.objects.filter(phone=bystander.phone).exists()


def test_a_blocked_number_is_suppressed_after_the_second_failure():
    first = failed(30004, days_ago=3)
    run_rules(first)
    assert suppressions() == []

    second = failed(30004)
    run_rules(second)

    assert suppressions() == [(PHONE, "blocked", [30004], None)]
    assert Suppression.objects.get().detail.count("error 30004") == 2
    assert opt_outs() == []


def test_an_unreachable_number_is_suppressed_after_n_failures_in_a_row():
    first, second = failed(30003, days_ago=20), failed(30008, days_ago=10)
    run_rules(first, second)
    assert suppressions() == []

    run_rules(failed(30003))

    assert suppressions() == [(PHONE, "unreachable", [30003, 30008], None)]
    assert Suppression.objects.get().detail.splitlines()[0] == (
        "Suppressed automatically after 3 failed messages, none delivered since:"
    )


def test_a_delivery_in_between_starts_the_count_again():
    failed(30003, days_ago=5)
    failed(30003, days_ago=4)
    delivered(days_ago=3)
    failed(30003, days_ago=2)

    run_rules(failed(30003))
    assert suppressions() == []

    run_rules(failed(30003))
    assert suppressions() == [(PHONE, "unreachable", [30003], None)]
    assert Suppression.objects.get().detail.count("error 30003") == 3


def test_failures_older_than_the_window_do_not_count():
    failed(30003, days_ago=45)
    failed(30003, days_ago=31)

    run_rules(failed(30003))

    assert suppressions() == []


def test_the_count_and_the_window_come_from_the_settings(settings):
    settings.SUPPRESS_AFTER_CONSECUTIVE_FAILURES = 2
    settings.SUPPRESS_FAILURE_WINDOW_DAYS = 60
    failed(30003, days_ago=45)

    run_rules(failed(30003))

    assert suppressions() == [(PHONE, "unreachable", [30003], None)]


def test_a_blocked_failure_counts_towards_the_unreachable_streak():
    failed(30004, days_ago=2)
    failed(30003, days_ago=1)

    run_rules(failed(30003))

    assert suppressions() == [(PHONE, "unreachable", [30004, 30003], None)]


def test_failures_on_our_side_never_suppress_nor_count_towards_a_streak(caplog):
    batch = BatchFactory(kind=Batch.Kind.API)  # several messages to one phone
    failed(30003, days_ago=2)
    ours = [failed(code, batch=batch) for code in (30007, 30034, 30032, 21408, 21612, 20003)]
    failed(30003, days_ago=1)

    with caplog.at_level(logging.ERROR, logger="delivery.suppression"):
        outcome = run_rules(*ours)

    assert suppressions() == []
    assert opt_outs() == []
    assert outcome.blocks == []
    # 6 errors: under the pause threshold.
    assert {(is_paused, reason) for _, is_paused, reason in batch_flags()} == {(False, "")}
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"Twilio refused 6 message(s) of batch {batch.pk} for a reason on our side, not the "
        "recipient's. Errors: 30007 The carrier filtered the message as spam (1); "
    )


def test_a_rate_limit_failure_never_suppresses():
    messages = [failed(20429, days_ago=days) for days in (3, 2, 1, 0)]
    run_rules(*messages)
    assert suppressions() == []


def test_failures_of_other_numbers_do_not_mix():
    failed(30003, phone=OTHER_PHONE, days_ago=2)
    failed(30003, phone=OTHER_PHONE, days_ago=1)

    run_rules(failed(30003))

    assert suppressions() == []


# --- Idempotency, history, races ---------------------------------------------------------


def test_the_same_failure_twice_makes_one_suppression():
    message = failed(21211)

    run_rules(message, message)
    second = run_rules(message)

    assert suppressions() == [(PHONE, "invalid", [21211], None)]
    assert second.blocks == []


def test_an_active_block_gets_nothing_new():
    SuppressionFactory(phone=PHONE, reason=Suppression.Reason.STAFF, error_codes=[])
    OptOutFactory(phone=OTHER_PHONE)

    outcome = run_rules(failed(21211), failed(21610, phone=OTHER_PHONE))

    assert outcome.blocks == []
    assert suppressions() == [(PHONE, "staff", [], None)]
    assert [(phone, source) for phone, source, _, _ in opt_outs()] == [(OTHER_PHONE, "keyword")]


def test_failures_before_a_lift_do_not_count_but_new_ones_do_and_history_stays():
    failed(21211, days_ago=2)
    run_rules(failed(30003, days_ago=2))
    suppression = Suppression.objects.get()
    suppression.lift(by=admin_user(), reason="The member says the number works")

    run_rules(failed(30003, days_ago=1))
    assert Suppression.objects.active().count() == 0

    run_rules(failed(30006))

    rows = suppressions()
    assert [(phone, reason, codes) for phone, reason, codes, _ in rows] == [
        (PHONE, "invalid", [21211]),
        (PHONE, "landline", [30006]),
    ]
    assert rows[0][3] is not None  # the lifted one, kept as history
    assert rows[1][3] is None


def test_an_opt_out_lifted_by_start_is_not_recreated_from_old_failures():
    old = failed(21610, days_ago=2)
    run_rules(old)
    OptOut.objects.get().lift(reason="Texted START")

    run_rules(old)

    assert [lifted is not None for *_, lifted in opt_outs()] == [True]


def test_a_block_written_by_someone_else_meanwhile_is_skipped_not_an_error():
    third_phone = "+14155550103"
    failed(21211)
    failed(21211, phone=OTHER_PHONE)
    failed(21610, phone=third_phone)
    blocks = decide_blocks(phones=[PHONE, OTHER_PHONE, third_phone])
    SuppressionFactory(phone=PHONE, reason=Suppression.Reason.STAFF, error_codes=[])
    OptOutFactory(phone=third_phone)

    created = create_blocks(blocks=blocks)

    assert [block.phone for block in created] == [OTHER_PHONE]
    assert suppressions() == [
        (PHONE, "staff", [], None),
        (OTHER_PHONE, "invalid", [21211], None),
    ]
    assert [(phone, source) for phone, source, _, _ in opt_outs()] == [(third_phone, "keyword")]


# --- The hooks ---------------------------------------------------------------------------


def test_a_send_refused_as_an_invalid_number_suppresses_it(django_capture_on_commit_callbacks):
    batch = BatchFactory()
    refused_message, _ = MessageFactory.create_batch(2, batch=batch)
    refused, accepted = claim_due_messages(batch_id=batch.pk, limit=10)

    def record(message, outcome, **kwargs):
        attempt = AttemptRecord(started_at=timezone.now(), duration_ms=9, outcome=str(outcome))
        return SendRecord(message=message, outcome=outcome, attempts=[attempt], **kwargs)

    with django_capture_on_commit_callbacks(execute=True):
        record_results(
            [
                record(
                    refused,
                    SendOutcome.FAILED,
                    error_code=21211,
                    error_message="The 'To' number is not a valid phone number.",
                ),
                record(accepted, SendOutcome.ACCEPTED, provider_sid="SM" + "b" * 32),
            ]
        )

    assert suppressions() == [(refused_message.phone, "invalid", [21211], None)]
    assert "Twilio said: The 'To' number is not a valid phone number." in (
        Suppression.objects.get().detail
    )
    assert opt_outs() == []
    assert batch_flags() == [(batch.pk, False, "")]


def test_an_undelivered_callback_applies_the_rules(django_capture_on_commit_callbacks):
    failed(30003, days_ago=2)
    failed(30003, days_ago=1)
    message = MessageFactory(phone=PHONE, status=Status.SENT, provider_sid="SM" + "c" * 32)

    with django_capture_on_commit_callbacks(execute=True):
        record_provider_status(
            provider_sid=message.provider_sid,
            provider_status="undelivered",
            error_code=30003,
            error_message="Unreachable destination handset",
        )

    assert suppressions() == [(PHONE, "unreachable", [30003], None)]
    assert Suppression.objects.get().detail.endswith("Twilio said: Unreachable destination handset")


def test_a_repeated_callback_does_not_apply_the_rules_again(django_capture_on_commit_callbacks):
    message = MessageFactory(phone=PHONE, status=Status.SENT, provider_sid="SM" + "d" * 32)
    report = {"provider_sid": message.provider_sid, "provider_status": "failed"}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        apply_provider_status(**report, error_code=30005)
        apply_provider_status(**report, error_code=30005)

    assert len(callbacks) == 1
    assert suppressions() == [(PHONE, "invalid", [30005], None)]


def test_a_delivered_callback_applies_no_rules(django_capture_on_commit_callbacks):
    message = MessageFactory(phone=PHONE, status=Status.SENT, provider_sid="SM" + "e" * 32)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")

    assert callbacks == []
    assert suppressions() == []
