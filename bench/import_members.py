"""Benchmark: the CSV member import on PostgreSQL, against a plain per-row ORM import.

Generates a realistic CSV (mixed phone formats, about 1% bad rows, a few duplicate
phones, names, emails and two extra columns), imports it into an empty members table of
a dedicated database, and prints rows/s, seconds and peak memory. Then it imports a
small sample the naive way (``update_or_create`` per row) and extrapolates.

    .venv/bin/python bench/run.py import_members -- --rows 1000000

Targets (2 cores): 100,000 rows in at most 4 s, 1,000,000 rows in at most 40 s, peak
memory under 200 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres:postgres@127.0.0.1:5432/smsadmin_bench"

# Real US area codes (geographic): every generated number is a valid mobile-or-fixed one.
AREA_CODES = [
    201, 202, 206, 212, 213, 214, 303, 305, 312, 404, 408, 412, 415, 503, 512, 602,
    617, 646, 702, 713, 718, 720, 773, 786, 801, 818, 858, 917, 919, 949,
]  # fmt: skip
FIRST_NAMES = ["Ada", "Grace", "Kofi", "Mei", "Tariq", "Zanele", "Luis", "Olga", "Ravi", "Ana"]
LAST_NAMES = ["Lovelace", "Hopper", "Annan", "Chen", "Ali", "Dlamini", "García", "Novak"]
CITIES = ["Oakland", "Brooklyn", "Austin", "Denver", "Chicago", "Miami", "Seattle"]
BAD_PHONES = ["n/a", "123", "555-1234", "", "call me", "+1 900 555 1234"]
PHONE_FORMATS = [
    "({area}) {exchange}-{line:04d}",
    "{area}-{exchange}-{line:04d}",
    "{area}.{exchange}.{line:04d}",
    "+1 {area} {exchange} {line:04d}",
    "1{area}{exchange}{line:04d}",
    "+1{area}{exchange}{line:04d}",
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="import_members", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the CSV file")
    parser.add_argument("--orm-rows", type=int, default=5_000, help="rows for the ORM baseline")
    parser.add_argument("--processes", type=int, default=None, help="validation processes")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    arguments = parser.parse_args(argv)

    _set_up_django(arguments.database_url)
    from members.importing.services import import_members
    from members.importing.writers import PostgresWriter

    class TimedPostgresWriter(PostgresWriter):
        """Notes when the file has been streamed and when the merge is done."""

        def finish(self):  # type: ignore[no-untyped-def]
            phases["streamed"] = time.perf_counter()
            counts = super().finish()
            phases["merged"] = time.perf_counter()
            return counts

    phases: dict[str, float] = {}

    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        path = Path(folder) / "members.csv"
        started = time.perf_counter()
        size = write_csv(path, rows=arguments.rows)
        print(
            f"generated {arguments.rows:,} rows ({size / 1024 / 1024:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        _empty_members_tables()
        rss_before = _peak_rss_megabytes()
        load_before = os.getloadavg()[0]  # other work on the machine skews the figures
        cpu_before = os.times()
        started = time.perf_counter()
        with path.open("rb") as file:
            summary = import_members(
                file=file,
                region="US",
                validation_processes=arguments.processes,
                writer_class=TimedPostgresWriter,
            )
        seconds = time.perf_counter() - started
        cpu = os.times()
        rss_peak = _peak_rss_megabytes()
        worker_peak = _peak_rss_megabytes(resource.RUSAGE_CHILDREN)
    rate = summary.rows / seconds
    print(summary.line())
    print(
        f"COPY import: {summary.rows:,} rows in {seconds:.2f} s = {rate:,.0f} rows/s; "
        f"peak RSS {rss_peak:.0f} MB (before the import {rss_before:.0f} MB), "
        f"largest validation worker {worker_peak:.0f} MB"
    )
    print(
        f"  phases: read + validate + COPY {phases['streamed'] - started:.2f} s, "
        f"merge (one upsert) {phases['merged'] - phases['streamed']:.2f} s; CPU: this process "
        f"{cpu.user + cpu.system - cpu_before.user - cpu_before.system:.1f} s, validation "
        f"workers {cpu.children_user + cpu.children_system:.1f} s; "
        f"load average before: {load_before:.2f}"
    )

    orm_seconds_per_row = _orm_baseline(rows=arguments.orm_rows)
    orm_estimate = orm_seconds_per_row * summary.rows
    print(
        f"per-row ORM import (update_or_create), measured on {arguments.orm_rows:,} rows: "
        f"{1 / orm_seconds_per_row:,.0f} rows/s, extrapolated to {summary.rows:,} rows: "
        f"{orm_estimate:.1f} s"
    )
    print(f"speed-up of the COPY import over the per-row ORM import: {orm_estimate / seconds:.1f}x")
    return 0


def write_csv(path: Path, *, rows: int, seed: int = 20251122) -> int:
    """Write ``rows`` realistic data rows to ``path``; return the file's size in bytes."""
    generator = random.Random(seed)
    recent_phones: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write("Phone,First Name,Last Name,Email,Daily,City,Member Since\n")
        for index in range(rows):
            roll = generator.random()
            if roll < 0.01:
                phone = generator.choice(BAD_PHONES)
            elif roll < 0.015 and recent_phones:
                phone = generator.choice(recent_phones)  # a duplicate in the file
            else:
                phone = generator.choice(PHONE_FORMATS).format(
                    area=generator.choice(AREA_CODES),
                    exchange=generator.randint(200, 999),
                    line=generator.randint(0, 9999),
                )
                if index % 97 == 0:
                    recent_phones = [*recent_phones[-20:], phone]
            first = generator.choice(FIRST_NAMES)
            last = generator.choice(LAST_NAMES)
            email = f"{first.lower()}.{index}@example.org" if generator.random() < 0.7 else ""
            daily = generator.choice(["yes", "no", "", ""])
            since = f"20{generator.randint(10, 25)}-0{generator.randint(1, 9)}-1{index % 10}"
            file.write(
                f'"{phone}",{first},{last},{email},{daily},{generator.choice(CITIES)},{since}\n'
            )
    return path.stat().st_size


def _set_up_django(database_url: str) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsadmin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    _create_database(database_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _create_database(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = database_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _empty_members_tables() -> None:
    from django.db import connection

    from members.models import Member

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Member._meta.db_table} CASCADE")
        cursor.execute("VACUUM ANALYZE")


def _orm_baseline(*, rows: int) -> float:
    """Seconds per row of a plain import: normalise, then update_or_create each row."""
    import csv

    from members.models import Member
    from members.phones import InvalidPhoneNumber, normalize

    _empty_members_tables()
    with tempfile.TemporaryDirectory(prefix="bench-import-orm-") as folder:
        path = Path(folder) / "sample.csv"
        write_csv(path, rows=rows, seed=7)
        started = time.perf_counter()
        with path.open(encoding="utf-8", newline="") as file:
            for record in csv.DictReader(file):
                try:
                    phone = normalize(record["Phone"], region="US")
                except InvalidPhoneNumber:
                    continue
                Member.objects.update_or_create(
                    phone=phone.e164,
                    defaults={
                        "first_name": record["First Name"],
                        "last_name": record["Last Name"],
                        "email": record["Email"],
                        "number_timezones": list(phone.timezones),
                        "fields": {"city": record["City"], "member_since": record["Member Since"]},
                    },
                )
        seconds = time.perf_counter() - started
    _empty_members_tables()
    return seconds / rows


def _peak_rss_megabytes(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
