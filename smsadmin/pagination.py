"""A paginator for tables of millions of rows: never a full count on a page view."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator
from django.db import connections

# Counting past this many rows is slow and tells staff nothing useful.
COUNT_CAP = 10_000


class LargeTablePaginator(Paginator):
    """Unfiltered: the planner's estimate of the table size. Filtered: a capped count."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return super().count
        connection = connections[queryset.db]
        if not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > COUNT_CAP:
                return int(row[0])
        return queryset.order_by()[: COUNT_CAP + 1].count()
