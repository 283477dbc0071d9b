"""Benchmark: the Message admin changelist at a million rows, unfiltered and searched by
phone, against Django's defaults (a full count and an ``icontains`` search).

Fills the messages table in SQL (ten batches, mixed statuses), runs ANALYZE, logs in a
superuser with Django's test Client and times page loads after a warm-up: the first
page unfiltered, and a search for one member's phone written the way staff type it
("(415) 200-1234"). Then it switches the registered MessageAdmin to Django's defaults
(``Paginator`` with its full count, the full result count shown, the default
``icontains`` search) and times the same pages.

    .venv/bin/python bench/changelist.py                  # 1,000,000 rows
    .venv/bin/python bench/changelist.py --requests 50

Targets: median at most 60 ms unfiltered, at most 20 ms for a phone search.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

URL = "/admin/delivery/message/"
TARGET_UNFILTERED_MS = 60
TARGET_SEARCH_MS = 20
BATCH_STATUSES = (
    "delivered", "delivered", "delivered", "delivered", "delivered", "sent", "accepted",
    "failed", "canceled", "pending",
)  # fmt: skip


def main(argv: list[str]) -> int:
    parser = support.parser_for("changelist", __doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages in the table")
    parser.add_argument("--requests", type=int, default=30, help="timed page loads each")
    parser.add_argument("--naive-requests", type=int, default=10)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.rows, arguments.requests, arguments.naive_requests = 100_000, 10, 3
    support.stop_cleanly_on_sigterm()
    support.set_up_django(arguments.database_url)
    try:
        return _run(arguments)
    finally:
        support.empty_delivery_tables()


def _run(arguments) -> int:  # type: ignore[no-untyped-def]
    from django.test import Client

    started = time.perf_counter()
    _fill(arguments.rows)
    print(
        f"{support.machine_line()}\n"
        f"{arguments.rows:,} messages in 10 batches, made and analysed in "
        f"{time.perf_counter() - started:.1f} s; {arguments.requests} timed requests each "
        f"after 3 of warm-up"
    )
    client = Client()
    client.force_login(_superuser())
    phone = support.phone_for(arguments.rows // 3)
    typed = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    search = f"{URL}?q={typed.replace(' ', '+')}"
    naive_search = f"{URL}?q={phone[2:]}"

    def one_row_found(content: bytes) -> bool:
        return phone.encode() in content and b"1 result" in content

    def is_list(content: bytes) -> bool:
        return b'id="result_list"' in content

    unfiltered = _timed(client, URL, arguments.requests, is_list)
    searched = _timed(client, search, arguments.requests, one_row_found)
    _print("ours", "unfiltered", unfiltered)
    _print("ours", f"search {typed!r}", searched)

    with _django_defaults():
        naive_unfiltered = _timed(client, URL, arguments.naive_requests, is_list)
        # icontains finds nothing for "(415) 200-1234" in "+14152001234": give it digits.
        naive_searched = _timed(client, naive_search, arguments.naive_requests, one_row_found)
    _print("Django's defaults", "unfiltered (full count)", naive_unfiltered)
    _print("Django's defaults", f"search {phone[2:]!r} (icontains)", naive_searched)
    print(
        f"speed-up over the defaults: unfiltered "
        f"{statistics.median(naive_unfiltered) / statistics.median(unfiltered):.1f}x, "
        f"search {statistics.median(naive_searched) / statistics.median(searched):.1f}x"
    )
    unfiltered_median = statistics.median(unfiltered) * 1000
    searched_median = statistics.median(searched) * 1000
    support.print_target(
        f"unfiltered median <= {TARGET_UNFILTERED_MS} ms ({unfiltered_median:.1f} ms)",
        passed=unfiltered_median <= TARGET_UNFILTERED_MS,
    )
    support.print_target(
        f"phone search median <= {TARGET_SEARCH_MS} ms ({searched_median:.1f} ms)",
        passed=searched_median <= TARGET_SEARCH_MS,
    )
    return 0


def _fill(rows: int) -> None:
    """``rows`` messages in ten batches, each of one status (SIDs once handed over)."""
    support.empty_delivery_tables()
    per_batch = rows // len(BATCH_STATUSES)
    for number, status in enumerate(BATCH_STATUSES):
        count = per_batch if number < len(BATCH_STATUSES) - 1 else rows - per_batch * number
        batch_id = support.create_batch(label=f"Campaign: bench {number + 1}")
        support.insert_messages(
            batch_id=batch_id,
            count=count,
            status=status,
            with_sids=status not in ("pending", "canceled"),
            first_index=per_batch * number,
        )
    support.vacuum_analyze("delivery_message", "delivery_batch")


def _superuser():  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.update_or_create(
        username="bench-admin",
        defaults={"is_staff": True, "is_superuser": True, "email": "bench@example.org"},
    )
    return user


def _timed(client, url: str, requests: int, check: Callable[[bytes], bool]) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds per page load, after three loads of warm-up; each page checked."""
    timings = []
    for number in range(3 + requests):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or not check(response.content):
            raise RuntimeError(f"GET {url}: {response.status_code}, not the expected page")
        if number >= 3:
            timings.append(elapsed)
    return timings


def _print(who: str, page: str, timings: list[float]) -> None:
    print(
        f"{who}, {page}: median {statistics.median(timings) * 1000:.1f} ms, "
        f"p95 {support.percentile(timings, 0.95) * 1000:.1f} ms "
        f"(min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f}; {len(timings)} requests)"
    )


class _django_defaults:
    """The registered MessageAdmin with Django's defaults, for the naive comparison."""

    def __enter__(self) -> None:
        from django.contrib import admin
        from django.core.paginator import Paginator

        from delivery.models import Message

        self.model_admin = admin.site._registry[Message]
        self.saved = {
            name: self.model_admin.__dict__.get(name)
            for name in ("paginator", "show_full_result_count", "get_search_results")
        }
        self.model_admin.paginator = Paginator
        self.model_admin.show_full_result_count = True
        self.model_admin.get_search_results = admin.ModelAdmin.get_search_results.__get__(
            self.model_admin
        )

    def __exit__(self, *exc_info: object) -> None:
        for name, value in self.saved.items():
            if value is None:
                self.model_admin.__dict__.pop(name, None)
            else:
                setattr(self.model_admin, name, value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
