"""fetch_prepared: rows as a cursor gives them, prepared once per connection, Django's
errors and execute wrappers; fetch_prepared_instances and insert_prepared: models as the
ORM loads and saves them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, ProgrammingError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from delivery.api.models import ApiKey
from delivery.models import Message
from delivery.tests.factories import BatchFactory
from smsadmin.prepared import fetch_prepared, fetch_prepared_instances, insert_prepared

pytestmark = pytest.mark.django_db
SQL = "SELECT %s::int + 1, %s::text"


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_it_returns_the_rows_and_prepares_the_statement_once_per_connection():
    assert fetch_prepared(SQL, [1, "a"]) == [(2, "a")]
    assert fetch_prepared(SQL, [41, "b"]) == [(42, "b")]
    ours = [statement for statement in prepared_statements() if "+ 1" in statement]
    assert ours == ["SELECT $1::int + 1, $2::text"]


def test_database_errors_are_djangos():
    with pytest.raises(ProgrammingError), transaction.atomic():
        fetch_prepared("SELECT no_such_column FROM delivery_message WHERE id = %s", [1])


def test_it_refuses_to_run_in_a_transaction_that_already_failed():
    with transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic(savepoint=False):
            fetch_prepared("SELECT 1 / %s", [0])
        with pytest.raises(TransactionManagementError):
            fetch_prepared(SQL, [1, "a"])


def test_execute_wrappers_see_the_statement_and_its_parameters():
    seen = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append((sql, list(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        assert fetch_prepared(SQL, [1, "a"]) == [(2, "a")]
    assert seen == [(SQL, [1, "a"])]


def test_instances_come_back_as_the_orm_loads_them():
    api_key, _ = ApiKey.objects.create_key(
        name="partner", scopes=["send", "read"], rate_limit_per_minute=42
    )
    ApiKey.objects.create_key(name="other", scopes=["contacts"])
    (loaded,) = fetch_prepared_instances(ApiKey, "prefix = %s", [api_key.prefix])
    expected = ApiKey.objects.get(pk=api_key.pk)
    fields = [field.attname for field in ApiKey._meta.concrete_fields]
    assert {name: getattr(loaded, name) for name in fields} == {
        name: getattr(expected, name) for name in fields
    }
    assert loaded.scopes == ["send", "read"]  # JSON decoded, as the ORM does
    assert loaded._state.adding is False
    assert fetch_prepared_instances(ApiKey, "prefix = %s", ["nothing"]) == []


def test_an_insert_stores_every_field_as_save_would_and_sets_the_primary_key():
    batch = BatchFactory()
    sent = Message(
        batch=batch,
        kind="api",
        phone="+14155550100",
        sender="+15005550006",
        body="Caf\u00e9 at 10",
        encoding="UCS-2",
        segments=1,
        metadata={"crm_id": 7, "tags": ["a", "b"]},
        send_after=timezone.now() + timedelta(hours=1),
    )
    insert_prepared(sent)
    assert sent.pk is not None
    assert sent._state.adding is False
    stored = Message.objects.get(pk=sent.pk)
    fields = [field.attname for field in Message._meta.concrete_fields]
    assert {name: getattr(stored, name) for name in fields} == {
        name: getattr(sent, name) for name in fields
    }
    assert stored.metadata == {"crm_id": 7, "tags": ["a", "b"]}
    assert (stored.status, stored.must_reconcile) == ("pending", False)
