"""One hot statement, prepared once per connection on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection


def fetch_prepared(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``%s`` placeholders) and return its rows.

    On PostgreSQL the statement is bound on the server and prepared the first time a
    connection runs it: later runs send only its parameters, with no quoting in Python
    and no parse or plan on the server. For statements run thousands of times a second
    (a status callback's UPDATE); it bypasses Django's cursor wrapper, so it is not in
    ``connection.queries`` nor in django-prometheus' query counts. Errors are Django's
    (``django.db.OperationalError`` …), as from ``connection.cursor()``. Elsewhere
    (SQLite) a plain cursor.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
