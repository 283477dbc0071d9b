"""Merge field values of members: which names exist, each member's values, who lacks one.

Values are the text PostgreSQL's ``fields ->> 'key'`` gives, so that a body rendered in
Python (previews, test texts) reads exactly like the one fan-out renders in SQL: strings
as they are, numbers and booleans as JSON writes them (``true``, ``2.5``), JSON null as
missing.
"""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import Count, F, Func, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact

from campaigns.templating import MEMBER_COLUMNS, Template
from members.models import Member


def merge_values(member: Member) -> dict[str, str]:
    """Every merge value of ``member``, as the SQL rendering sees it."""
    values: dict[str, str] = {}
    if isinstance(member.fields, dict):
        for key, value in member.fields.items():
            if value is None:
                continue
            values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    # A column wins over an imported column of the same name, as in Template.to_sql().
    for column in MEMBER_COLUMNS:
        values[column] = getattr(member, column)
    return values


def known_merge_fields(members: QuerySet[Member]) -> frozenset[str]:
    """The member columns, plus every key of ``fields`` that any of ``members`` has."""
    return frozenset(MEMBER_COLUMNS) | _field_keys(members)


def _field_keys(members: QuerySet[Member]) -> frozenset[str]:
    members = members.exclude(fields={}).order_by()
    if connection.vendor == "postgresql":
        # One pass in the database; only the distinct key names come back.
        sql, params = members.values("fields").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT jsonb_object_keys(pool.fields) FROM "  # noqa: S608
                f"({sql}) AS pool WHERE jsonb_typeof(pool.fields) = 'object'",
                params,
            )
            return frozenset(key for (key,) in cursor.fetchall())
    # Other databases (the SQLite demo): read the fields in chunks.
    keys: set[str] = set()
    for fields in members.values_list("fields", flat=True).iterator(chunk_size=2000):
        if isinstance(fields, dict):
            keys.update(fields)
    return frozenset(keys)


def count_missing_values(members: QuerySet[Member], template: Template) -> dict[str, int]:
    """For each field ``template`` uses, how many of ``members`` lack a value (missing,
    null or empty), i.e. would get the fallback or nothing. One aggregate query."""
    if not template.fields:
        return {}
    aggregates = {
        f"missing_{index}": Count("pk", filter=Q(Exact(_value_expression(name), "")))
        for index, name in enumerate(template.fields)
    }
    counts = members.order_by().aggregate(**aggregates)
    return {name: counts[f"missing_{index}"] for index, name in enumerate(template.fields)}


class _FieldText(Func):
    """``fields ->> 'name'`` with the name always a key: KeyTextTransform would read a
    name of digits ("2024") as an array index, and Template.to_sql() does not."""

    template = "(%(expressions)s)"
    arg_joiner = " ->> "
    output_field = TextField()


def _value_expression(name: str) -> F | Coalesce:
    if name in MEMBER_COLUMNS:
        return F(name)
    if connection.vendor == "postgresql":
        value = _FieldText(F("fields"), Value(name))
    else:
        value = KeyTextTransform(name, "fields")
    return Coalesce(value, Value(""), output_field=TextField())
