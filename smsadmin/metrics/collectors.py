"""Metrics read from the database (and the heartbeats) when Prometheus scrapes.

Registered once, on the ``/metrics`` view's registry: every query runs once per scrape,
in the web process that answers it, whatever the number of processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError, connection
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Counting stops here: a backlog this large is alarming enough, and counting a larger
# one would make every scrape slow.
PENDING_COUNT_CAP = 1_000_000
# The oldest due pending message is looked for among this many oldest pending rows (in
# id order, on the (status, id) index), so that a large backlog held for quiet hours or
# a schedule is never scanned whole.
OLDEST_PENDING_SCAN_ROWS = 10_000


class DatabaseCollector(Collector):
    def describe(self) -> list[Metric]:
        # Nothing to describe ahead: registering must not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._messages()
            yield from self._campaigns()
        except DatabaseError:
            logger.exception("Metrics: the database could not be read")
        yield from self._heartbeats()

    def _messages(self) -> Iterator[Metric]:
        from delivery.selectors import oldest_pending

        yield GaugeMetricFamily(
            "smsadmin_pending_messages",
            f"Messages waiting to be sent (counted up to {PENDING_COUNT_CAP:,}).",
            value=count_pending_capped(),
        )
        now = timezone.now()
        due_since = min(
            (
                due_at
                for _id, created_at, send_after in oldest_pending(limit=OLDEST_PENDING_SCAN_ROWS)
                if (due_at := send_after or created_at) <= now
            ),
            default=None,
        )
        yield GaugeMetricFamily(
            "smsadmin_oldest_pending_message_age_seconds",
            "Seconds the oldest due pending message has waited since it became due "
            "(its send_after, else its creation); 0 when none is due.",
            value=0.0 if due_since is None else max(0.0, (now - due_since).total_seconds()),
        )

    def _campaigns(self) -> Iterator[Metric]:
        from campaigns.models import Campaign
        from delivery.selectors import status_counts

        states = GaugeMetricFamily("smsadmin_campaigns", "Campaigns by state.", labels=["state"])
        counts = dict(Campaign.objects.order_by().values_list("state").annotate(count=Count("id")))
        for state in Campaign.State.values:
            states.add_metric([state], counts.get(state, 0))
        yield states

        per_campaign = GaugeMetricFamily(
            "smsadmin_campaign_messages",
            "Messages of each campaign in state sending, by status.",
            labels=["campaign", "status"],
        )
        sending = dict(
            Campaign.objects.in_progress().filter(batch__isnull=False).values_list("batch_id", "pk")
        )
        for batch_id, counts in status_counts(sending).items():
            for status, count in counts.items():
                if count:
                    per_campaign.add_metric([str(sending[batch_id]), status], count)
        yield per_campaign

    def _heartbeats(self) -> Iterator[Metric]:
        try:
            from smsadmin import heartbeats
        except ImportError:
            return
        for name, read in (
            ("worker", getattr(heartbeats, "worker_heartbeat_age", None)),
            ("beat", getattr(heartbeats, "beat_heartbeat_age", None)),
        ):
            if read is None:
                continue
            try:
                age = read()
            except Exception:
                logger.exception("Metrics: the %s heartbeat could not be read", name)
                continue
            if age is not None:
                yield GaugeMetricFamily(
                    f"smsadmin_{name}_heartbeat_age_seconds",
                    f"Seconds since the {name} last showed it is alive.",
                    value=age,
                )


def count_pending_capped() -> int:
    """Pending messages, counted up to PENDING_COUNT_CAP (one index-only scan)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM delivery_message "
            "WHERE status = 'pending' LIMIT %s) AS capped",
            [PENDING_COUNT_CAP],
        )
        return int(cursor.fetchone()[0])
