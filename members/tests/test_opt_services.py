"""Opting out and back in: one active opt-out per phone, even when two STOPs race."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from members.models import OptOut
from members.services import opt_in_phone, opt_out_phone
from members.tests.factories import OptOutFactory, UserFactory

PHONE = "+14155552671"
OTHER_PHONE = "+14155552672"


def rows(phone: str = PHONE) -> list[tuple]:
    return list(
        OptOut.objects.filter(phone=phone)
        .order_by("id")
        .values_list("source", "reason", "created_by", "lifted_at", "lifted_reason")
    )


@pytest.mark.django_db
def test_opt_out_creates_one_active_opt_out_with_its_source_and_reason():
    staff = UserFactory()

    opt_out = opt_out_phone(phone=PHONE, source=OptOut.Source.STAFF, reason="Asked", by=staff)

    assert opt_out is not None
    assert rows() == [("staff", "Asked", staff.pk, None, "")]
    assert rows(OTHER_PHONE) == []


@pytest.mark.django_db
def test_opting_out_an_opted_out_phone_returns_none_and_adds_nothing():
    existing = OptOutFactory(phone=PHONE, source=OptOut.Source.KEYWORD, reason="STOP")

    assert opt_out_phone(phone=PHONE, source=OptOut.Source.KEYWORD, reason="END") is None

    assert list(OptOut.objects.values_list("pk", flat=True)) == [existing.pk]
    assert rows() == [("keyword", "STOP", None, None, "")]


@pytest.mark.django_db
def test_a_long_reason_is_cut_to_fit():
    opt_out_phone(phone=PHONE, source=OptOut.Source.KEYWORD, reason="x" * 300)

    assert OptOut.objects.get().reason == "x" * 255


@pytest.mark.django_db
def test_opt_in_lifts_the_active_opt_out_and_keeps_it_as_history():
    staff = UserFactory()
    opt_out = OptOutFactory(phone=PHONE)

    assert opt_in_phone(phone=PHONE, reason="START keyword", by=staff) is True

    opt_out.refresh_from_db()
    assert opt_out.lifted_at is not None
    assert (opt_out.lifted_by, opt_out.lifted_reason) == (staff, "START keyword")
    assert not OptOut.objects.active().exists()


@pytest.mark.django_db
def test_opt_in_without_an_active_opt_out_changes_nothing():
    OptOutFactory(phone=OTHER_PHONE)

    assert opt_in_phone(phone=PHONE, reason="START keyword") is False

    assert rows() == []
    assert rows(OTHER_PHONE) == [("keyword", "STOP", None, None, "")]


@pytest.mark.django_db
def test_out_in_and_out_again_leaves_the_whole_history():
    opt_out_phone(phone=PHONE, source=OptOut.Source.KEYWORD, reason="STOP")
    opt_in_phone(phone=PHONE, reason="START keyword")
    opt_out_phone(phone=PHONE, source=OptOut.Source.KEYWORD, reason="QUIT")

    history = rows()
    assert [(source, reason, lifted_reason) for source, reason, _, _, lifted_reason in history] == [
        ("keyword", "STOP", "START keyword"),
        ("keyword", "QUIT", ""),
    ]
    assert OptOut.objects.active().get().reason == "QUIT"


@pytest.mark.django_db
def test_losing_the_race_returns_none_and_keeps_the_callers_transaction_usable(monkeypatch):
    winner = OptOutFactory(phone=PHONE)
    # As if the winner committed just after this caller looked: only the index refuses.
    monkeypatch.setattr(OptOut.objects, "active", lambda: OptOut.objects.none())

    with transaction.atomic():
        assert opt_out_phone(phone=PHONE, source=OptOut.Source.KEYWORD, reason="STOP") is None
        assert list(OptOut.objects.values_list("pk", flat=True)) == [winner.pk]


def _backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_stops_make_one_active_opt_out():
    results: dict[str, OptOut | None] = {}
    first_inserted = threading.Event()
    first_may_commit = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = opt_out_phone(
                    phone=PHONE, source=OptOut.Source.KEYWORD, reason="STOP"
                )
                first_inserted.set()
                first_may_commit.wait(timeout=10)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            # Does not see the first's uncommitted row, so it waits on the unique index.
            results["second"] = opt_out_phone(
                phone=PHONE, source=OptOut.Source.KEYWORD, reason="STOP"
            )
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=first)
    second_thread = threading.Thread(target=second)
    first_thread.start()
    assert first_inserted.wait(timeout=10)
    second_thread.start()
    deadline = time.monotonic() + 10
    while not (second_waited := _backend_waits_on_a_lock()) and time.monotonic() < deadline:
        time.sleep(0.01)
    first_may_commit.set()
    first_thread.join(timeout=10)
    second_thread.join(timeout=10)

    assert second_waited  # the second got past its check and met the index
    assert results["first"] is not None
    assert results["second"] is None
    assert list(OptOut.objects.active().values_list("pk", flat=True)) == [results["first"].pk]
