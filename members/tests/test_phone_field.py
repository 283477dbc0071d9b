"""Phone columns compare bytes: the "C" collation on PostgreSQL, nothing added on SQLite."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

from members.fields import PhoneField

PHONE_COLUMNS = {
    ("members_member", "phone"),
    ("members_optout", "phone"),
    ("members_suppression", "phone"),
    ("members_staffprofile", "phone"),
    ("members_historicalmember", "phone"),
    ("members_historicaloptout", "phone"),
    ("members_historicalsuppression", "phone"),
    ("delivery_message", "phone"),
    ("delivery_inboundmessage", "from_phone"),
}


def test_every_phone_column_of_the_models_is_a_phone_field():
    phone_fields = {
        (model._meta.db_table, field.column)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, PhoneField)
    }
    assert phone_fields == PHONE_COLUMNS


@pytest.mark.django_db
def test_phone_columns_are_collated_c_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, collation_name
            FROM information_schema.columns
            WHERE table_schema = current_schema()
            """
        )
        collations = {
            (table, column): collation
            for table, column, collation in cursor
            if (table, column) in PHONE_COLUMNS
        }
    assert collations == dict.fromkeys(PHONE_COLUMNS, "C")


def test_sqlite_gets_no_collation_since_it_compares_bytes_already():
    sqlite = SQLiteWrapper({**connection.settings_dict, "NAME": ":memory:"})
    field = PhoneField()
    assert field.db_parameters(sqlite)["collation"] is None
    assert field.db_parameters(connection)["collation"] == "C"
