"""Hot statements, prepared once per connection on PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def fetch_prepared(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``%s`` placeholders) and return its rows.

    On PostgreSQL the statement is bound on the server and prepared the first time a
    connection runs it: later runs send only its parameters, with no quoting in Python
    and no parse or plan on the server. For statements run thousands of times a second
    (a status callback's UPDATE, an API key's lookup). Django's execute wrappers
    (``connection.execute_wrapper``) see it and its errors are Django's
    (``django.db.OperationalError`` …), as from ``connection.cursor()``; it is not in
    ``connection.queries`` nor in django-prometheus' query counts. Elsewhere (SQLite) a
    plain cursor.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    execute: Callable[..., list[tuple[Any, ...]]] = _execute_prepared
    for wrapper in reversed(connection.execute_wrappers):
        execute = functools.partial(wrapper, execute)
    return execute(sql, params, False, {"connection": connection, "cursor": None})


def _execute_prepared(
    sql: str, params: Sequence[Any], many: bool, context: dict[str, Any]
) -> list[tuple[Any, ...]]:
    import psycopg

    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def fetch_prepared_instances(model: type[M], where: str, params: Sequence[Any]) -> list[M]:
    """The ``model`` rows matching ``where`` (SQL on its table's columns), every concrete
    field loaded and converted as the ORM would, through :func:`fetch_prepared`."""
    loader = _loader(model)
    instances = []
    for row in fetch_prepared(f"{loader.select} WHERE {where}", params):
        values = list(row)
        for index, column, converters in loader.converters:
            for convert in converters:
                values[index] = convert(values[index], column, connection)
        instances.append(model.from_db(connection.alias, loader.attnames, values))
    return instances


def insert_prepared(instance: Model) -> None:
    """Save a new ``instance`` in one prepared INSERT … RETURNING its primary key.

    ``Model.objects.create`` without the ORM's query compiler and without the
    ``pre_save``/``post_save`` signals: only for models nothing listens to (a message
    sent through the API). Fields are prepared as ``save()`` prepares them.
    """
    insert, fields = _inserter(type(instance))
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    ((pk,),) = fetch_prepared(insert, values)
    setattr(instance, instance._meta.pk.attname, pk)
    instance._state.adding = False
    instance._state.db = connection.alias


@functools.cache
def _inserter(model: type[Model]) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"RETURNING {quote(meta.pk.column)}",
        fields,
    )


@dataclass(frozen=True)
class _Loader:
    select: str
    attnames: list[str]
    # (position in the row, the column, its converters) for the columns that have any
    converters: list[tuple[int, Any, list[Callable[..., Any]]]]


@functools.cache
def _loader(model: type[Model]) -> _Loader:
    quote = connection.ops.quote_name
    table = model._meta.db_table
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(table)
        found = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        if found:
            converters.append((index, column, found))
    columns = ", ".join(quote(field.column) for field in fields)
    return _Loader(
        select=f"SELECT {columns} FROM {quote(table)}",  # noqa: S608 - model metadata
        attnames=[field.attname for field in fields],
        converters=converters,
    )
