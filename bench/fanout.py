"""Benchmark: a campaign's fan-out (members → Message rows, in SQL), against a per-row ORM loop.

Builds a community of members in SQL (every 100th opted out, every 200th suppressed,
every 50th outside the pool, some blank first names, some names that force UCS-2), then
runs ``campaigns.fanout.fan_out`` for a real Campaign and Batch inside a transaction, as
``launch_campaign`` does, and times it to the commit. Then it creates a sample of the
same messages the naive way (render in Python, ``Message.objects.create`` per recipient)
and extrapolates.

    .venv/bin/python bench/fanout.py                     # 100,000 recipients
    .venv/bin/python bench/fanout.py --members 1000000   # 1,000,000 recipients
    .venv/bin/python bench/fanout.py --explain           # also EXPLAIN ANALYZE it

Targets (2 cores): 100,000 recipients in at most 1 s; 1,000,000 in at most 10 s.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

BODY = (
    "Hi {first_name|friend}, the {garden|community} garden opens Saturday at 10. "
    "Reply STOP to opt out."
)
# Seconds per 100,000 recipients the target allows (1 s per 100k, 10 s per million).
TARGET_SECONDS_PER_100K = 1.0


def main(argv: list[str]) -> int:
    parser = support.parser_for("fanout", __doc__)
    parser.add_argument("--members", type=int, default=100_000, help="recipients to fan out to")
    parser.add_argument("--runs", type=int, default=3, help="fan-outs to time (median kept)")
    parser.add_argument("--orm-sample", type=int, default=5_000, help="rows for the ORM baseline")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE too")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.members, arguments.runs, arguments.orm_sample = 20_000, 1, 500
    support.stop_cleanly_on_sigterm()
    support.set_up_django(arguments.database_url)

    started = time.perf_counter()
    recipients = _make_community(arguments.members)
    print(
        f"{support.machine_line()}\n"
        f"community: {recipients:,} recipients to reach (plus opted-out, suppressed and "
        f"outside members) made in {time.perf_counter() - started:.1f} s"
    )
    if arguments.explain:
        _explain()

    timings = []
    for run in range(1, arguments.runs + 1):
        seconds, created = _timed_fan_out()
        timings.append(seconds)
        print(
            f"fan-out run {run}: {created:,} messages in {seconds:.2f} s = "
            f"{created / seconds:,.0f} messages/s"
        )
        if created != recipients:
            print(f"ERROR: expected {recipients:,} messages, got {created:,}")
            return 1
    median = statistics.median(timings)

    orm_seconds_per_row = _orm_baseline(arguments.orm_sample)
    orm_estimate = orm_seconds_per_row * recipients
    print(
        f"per-row ORM fan-out (render in Python + Message.objects.create), measured on "
        f"{arguments.orm_sample:,} recipients: {1 / orm_seconds_per_row:,.0f} messages/s, "
        f"extrapolated to {recipients:,}: {orm_estimate:.1f} s"
    )
    print(
        f"fan_out: median {median:.2f} s for {recipients:,} recipients "
        f"({recipients / median:,.0f} messages/s); "
        f"speed-up over the per-row ORM loop: {orm_estimate / median:.0f}x"
    )
    target = TARGET_SECONDS_PER_100K * recipients / 100_000
    support.print_target(
        f"{recipients:,} recipients in <= {target:.1f} s (measured {median:.2f} s)",
        passed=median <= target,
    )
    support.empty_delivery_tables()
    return 0


def _make_community(recipients: int) -> int:
    """Exactly ``recipients`` reachable community members, plus the ones fan-out skips."""
    from campaigns.audience import eligible_members
    from campaigns.models import Campaign

    support.empty_delivery_tables()
    support.empty_member_tables()
    total = _members_for(recipients)
    # Member ids follow the series (the tables were just emptied): id = i + 1.
    support.execute(
        f"""
        INSERT INTO members_member (
            phone, first_name, last_name, email, fields, timezone, number_timezones,
            is_community, is_daily_subscriber, created_at, updated_at
        )
        SELECT {support.phone_sql()},
               CASE WHEN mod(i, 10) = 0 THEN '' WHEN mod(i, 97) = 0 THEN 'Łukasz'
                    ELSE (ARRAY['Ada','Grace','Kofi','Mei','Tariq','Zanele','Luis'])[1 + mod(i, 7)]
               END,
               (ARRAY['Lovelace','Hopper','Annan','Chen','Ali','García'])[1 + mod(i, 6)],
               'member' || i || '@example.org',
               CASE WHEN mod(i, 3) = 0 THEN '{{}}'::jsonb
                    ELSE jsonb_build_object(
                        'garden', (ARRAY['North','South','East'])[1 + mod(i, 3)], 'city', 'Oakland'
                    )
               END,
               '', '["America/New_York"]'::jsonb, NOT ({_OUTSIDE.format(i="i")}), false,
               now(), now()
        FROM generate_series(0, %s) AS i
        """,  # noqa: S608 - our own SQL
        [total - 1],
    )
    support.execute(
        "INSERT INTO members_optout (phone, created_at, source, reason, lifted_reason) "  # noqa: S608
        "SELECT phone, now(), 'keyword', 'STOP', '' FROM members_member "
        f"WHERE {_OPTED_OUT.format(i='(id - 1)')}"
    )
    support.execute(
        "INSERT INTO members_suppression "  # noqa: S608
        "(phone, created_at, reason, error_codes, detail, lifted_reason) "
        "SELECT phone, now(), 'landline', '[30006]', '', '' FROM members_member "
        f"WHERE {_SUPPRESSED.format(i='(id - 1)')}"
    )
    support.vacuum_analyze("members_member", "members_optout", "members_suppression")
    return eligible_members(Campaign(name="bench", body=BODY)).count()


# Which members fan-out must skip, by position i in the series: 2% outside the pool,
# 1% opted out, 0.5% suppressed (disjoint rules).
_OUTSIDE = "mod({i}, 50) = 1"
_OPTED_OUT = "mod({i}, 100) = 3"
_SUPPRESSED = "mod({i}, 200) = 7"


def _is_skipped(i: int) -> bool:
    return i % 50 == 1 or i % 100 == 3 or i % 200 == 7


def _members_for(recipients: int) -> int:
    """How many members make exactly ``recipients`` reachable ones."""
    per_block = sum(not _is_skipped(i) for i in range(200))
    blocks, rest = divmod(recipients, per_block)
    total = blocks * 200
    while rest:
        rest -= not _is_skipped(total)
        total += 1
    return total


def _new_campaign_and_batch() -> tuple[object, object]:
    from campaigns.models import Campaign
    from delivery.models import Batch

    campaign = Campaign.objects.create(name="Bench: garden opening", body=BODY)
    batch = Batch.objects.create(
        kind=Batch.Kind.CAMPAIGN, label="Campaign: bench", sender=campaign.sender
    )
    return campaign, batch


def _timed_fan_out() -> tuple[float, int]:
    """Seconds of one fan-out into an empty messages table, to the commit, and its count."""
    from django.db import transaction

    from campaigns.fanout import fan_out

    support.empty_delivery_tables()
    support.vacuum_analyze("delivery_message")
    campaign, batch = _new_campaign_and_batch()
    started = time.perf_counter()
    with transaction.atomic():
        created = fan_out(campaign=campaign, batch=batch)  # type: ignore[arg-type]
    return time.perf_counter() - started, created


def _explain() -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement fan_out runs; rolled back after."""
    from django.db import connection, transaction

    from campaigns.fanout import fan_out

    support.empty_delivery_tables()
    campaign, batch = _new_campaign_and_batch()
    plans: list[str] = []

    def explain(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith(("INSERT", "SELECT ID")):
            result = execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params, many, context)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
            return result
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(explain):
        fan_out(campaign=campaign, batch=batch)  # type: ignore[arg-type]
        transaction.set_rollback(True)
    for plan in plans:
        print(f"--- EXPLAIN ANALYZE\n{plan}")


def _orm_baseline(sample: int) -> float:
    """Seconds per message of the naive fan-out: one render and one INSERT per recipient."""
    from campaigns.audience import eligible_members
    from campaigns.merge_fields import merge_values
    from campaigns.templating import parse_template
    from delivery.models import Batch, Message
    from delivery.segments import analyze

    support.empty_delivery_tables()
    campaign, batch = _new_campaign_and_batch()
    template = parse_template(BODY)
    started = time.perf_counter()
    for member in eligible_members(campaign)[:sample]:  # type: ignore[arg-type]
        body = template.render(merge_values(member)).text
        shape = analyze(body)
        Message.objects.create(
            batch=batch,
            kind=Batch.Kind.CAMPAIGN,
            phone=member.phone,
            sender=batch.sender,  # type: ignore[attr-defined]
            body=body,
            encoding=shape.encoding,
            segments=shape.segments,
        )
    return (time.perf_counter() - started) / sample


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
