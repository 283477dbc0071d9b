"""What the send-pipeline benchmarks share: their own database and Redis database, child
processes that are always stopped, data made in SQL, and figures printed alike.

Not a benchmark itself (no ``main``): ``bench/run.py`` skips it.

Every benchmark works on the PostgreSQL database ``smsadmin_bench_send`` (created and
migrated on first use, never another one) and Redis database 15, and starts and stops
its own servers (fake Twilio, Celery worker, gunicorn) in process groups of their own,
so that a failure or Ctrl-C never leaves one running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres:postgres@127.0.0.1:5432/smsadmin_bench_send"
# Redis database 15 belongs to the benchmarks: they flush it before and after use.
REDIS_URL = "redis://127.0.0.1:6379/15"
SENDER = "+15005550006"

# Real US area codes; the n-th phone is area code n % 30 with a distinct local number,
# the same scheme as the tests' ``us_mobile``: valid numbers that normalise to themselves.
AREA_CODES = (
    201, 202, 206, 212, 213, 214, 303, 305, 312, 404, 408, 412, 415, 503, 512, 602,
    617, 646, 702, 713, 718, 720, 773, 786, 801, 818, 858, 917, 919, 949,
)  # fmt: skip


def phone_for(index: int) -> str:
    """The phone ``phone_sql`` gives for ``index`` (to look one up from Python)."""
    local = index // len(AREA_CODES)
    area = AREA_CODES[index % len(AREA_CODES)]
    return f"+1{area}{200 + local // 10_000 % 800:03d}{local % 10_000:04d}"


def phone_sql(index: str = "i") -> str:
    """A SQL expression for the phone of the integer ``index`` (see :func:`phone_for`)."""
    codes = ",".join(str(code) for code in AREA_CODES)
    count = len(AREA_CODES)
    return (
        f"'+1' || (ARRAY[{codes}])[1 + mod({index}, {count})]::text"
        f" || (200 + mod({index} / {count} / 10000, 800))::text"
        f" || lpad(mod({index} / {count}, 10000)::text, 4, '0')"
    )


# --- arguments and Django ---------------------------------------------------------------
def parser_for(name: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=name, description=(doc or "").split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and short runs: a smoke test"
    )
    return parser


def django_environment(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of the benchmark and of every process it starts."""
    environment = dict(os.environ)
    # The twilio SDK rewrites its host for these; the fake listens on loopback.
    environment.pop("TWILIO_EDGE", None)
    environment.pop("TWILIO_REGION", None)
    environment.update(
        DJANGO_SETTINGS_MODULE="smsadmin.settings",
        # "test": PostgreSQL and Redis from the URLs below, DEBUG off (DEBUG would keep
        # every query in memory and slow everything), no production-only checks.
        DJANGO_ENV="test",
        DEBUG="false",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    environment.update(overrides)
    return environment


def set_up_django(database_url: str, **overrides: str) -> None:
    """Point Django at the benchmark database (created and migrated here) and set it up."""
    sys.path.insert(0, str(BASE_DIR))
    environment = django_environment(database_url, **overrides)
    os.environ.clear()  # drops TWILIO_EDGE / TWILIO_REGION too
    os.environ.update(environment)
    create_database(database_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def create_database(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = database_url.rsplit("/", 1)
    if not name.startswith("smsadmin_bench"):
        raise SystemExit(f"refusing to use {name!r}: benchmark databases are smsadmin_bench*")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement on Django's connection; return its row count."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def vacuum_analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def empty_delivery_tables() -> None:
    """Forget every message, batch and campaign (CASCADE reaches campaigns_campaign)."""
    execute(
        "TRUNCATE delivery_attempt, delivery_earlystatus, delivery_message, delivery_batch "
        "RESTART IDENTITY CASCADE"
    )


def empty_member_tables() -> None:
    execute("TRUNCATE members_member, members_optout, members_suppression RESTART IDENTITY CASCADE")


def flush_redis() -> None:
    """Empty Redis database 15, the benchmarks' own."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def create_batch(*, label: str, sender: str = SENDER) -> int:
    from delivery.models import Batch

    return Batch.objects.create(kind=Batch.Kind.CAMPAIGN, label=label, sender=sender).pk


def insert_messages(
    *,
    batch_id: int,
    count: int,
    sender: str = SENDER,
    status: str = "pending",
    two_segment_every: int = 0,
    with_sids: bool = False,
    first_index: int = 0,
) -> None:
    """``count`` messages of one batch in one INSERT … SELECT generate_series.

    Every ``two_segment_every``-th body is 2 GSM-7 segments long (200 characters), the
    others 1. ``with_sids`` gives each a provider SID (``SM`` + 32 hex digits of its index).
    """
    one = (
        "'Hi ' || i::text || ', the community garden opens Saturday at 10. Reply STOP to opt out.'"
    )
    two = f"rpad({one} || ' ', 200, 'Bring gloves, water and a friend. ')"
    body = (
        f"CASE WHEN mod(i, {two_segment_every}) = 0 THEN {two} ELSE {one} END"
        if (two_segment_every)
        else one
    )
    segments = (
        f"CASE WHEN mod(i, {two_segment_every}) = 0 THEN 2 ELSE 1 END"
        if (two_segment_every)
        else "1"
    )
    sid = "'SM' || lpad(to_hex(i), 32, '0')" if with_sids else "NULL"
    execute(
        f"""
        INSERT INTO delivery_message (
            batch_id, kind, phone, sender, body, encoding, segments, status, provider_sid,
            attempts, must_reconcile, error_message, created_at, status_updated_at,
            accepted_at
        )
        SELECT %s, 'campaign', {phone_sql()}, %s, {body}, 'GSM-7', {segments}, %s, {sid},
               0, false, '', now(), now(),
               CASE WHEN %s IN ('pending', 'sending') THEN NULL ELSE now() END
        FROM generate_series(%s::bigint, %s::bigint) AS i
        """,  # noqa: S608 - our own SQL pieces; values are parameters
        [batch_id, sender, status, status, first_index, first_index + count - 1],
    )


def count_by_status(batch_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM delivery_message WHERE batch_id = %s GROUP BY status",
            [batch_id],
        )
        return dict(cursor.fetchall())


# --- child processes -------------------------------------------------------------------
def stop_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that ``finally`` blocks stop the children."""

    def interrupt(signal_number: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal_number}")

    signal.signal(signal.SIGTERM, interrupt)


@dataclass
class Child:
    """A server this benchmark started, in a process group of its own."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log()[-3000:]}")

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after a grace period."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Pool children may outlive their parent for a moment: leave none behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def child_process(
    name: str,
    arguments: Sequence[str],
    *,
    environment: dict[str, str],
    log_dir: Path,
    ready_text: str = "",
    ready: Callable[[], bool] | None = None,
    timeout: float = 60,
) -> Iterator[Child]:
    """Start a server, wait until its log says ``ready_text`` (or ``ready()`` is true),
    and always stop it."""
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            list(arguments),
            cwd=BASE_DIR,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child = Child(name=name, process=process, log_path=log_path)
    try:
        if ready is None:
            child.wait_for(ready_text, timeout)
        else:
            child.wait_until(ready, timeout)
        yield child
    except BaseException:
        sys.stderr.write(f"--- last lines of {name}'s log ---\n{child.log()[-2000:]}\n")
        raise
    finally:
        child.stop()


@dataclass
class FakeTwilioProcess:
    child: Child
    base_url: str
    account_sid: str
    auth_token: str

    def requests(self) -> list[dict[str, Any]]:
        """The fake's request log (Messages API requests only), oldest first."""
        return _get_json(f"{self.base_url}/_fake/requests", timeout=120)["requests"]

    def reset(self) -> None:
        url = f"{self.base_url}/_fake/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - loopback http
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()


@contextlib.contextmanager
def fake_twilio(
    *, log_dir: Path, latency_ms: float = 50, max_records: int = 200_000
) -> Iterator[FakeTwilioProcess]:
    """``python -m smsadmin.fakes.twilio`` on a free loopback port, answering in
    ``latency_ms``. No callbacks, and messages stay ``queued`` (``--status-delay-ms -1``):
    status changes nobody hears about would only spend the fake's CPU, which the code
    under test shares."""
    from smsadmin.fakes.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    arguments = [
        sys.executable,
        "-m",
        "smsadmin.fakes.twilio",
        "--port=0",
        f"--latency-ms={latency_ms}",
        "--no-callbacks",
        "--status-delay-ms=-1",
        f"--max-records={max_records}",
    ]
    ready = "Fake Twilio listening on "
    with child_process(
        "fake-twilio",
        arguments,
        environment=dict(os.environ),
        log_dir=log_dir,
        ready_text=ready,
        timeout=30,
    ) as child:
        line = next(line for line in child.log().splitlines() if line.startswith(ready))
        base_url = line.removeprefix(ready).split()[0]
        yield FakeTwilioProcess(
            child=child,
            base_url=base_url,
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
        )


def worker_settings(fake: FakeTwilioProcess, **overrides: str) -> dict[str, str]:
    """Settings (environment variables) of a worker that sends to the fake Twilio."""
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_API_BASE_URL": fake.base_url,
        # Signed into every request as StatusCallback; nothing calls it (no callbacks).
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        **overrides,
    }


@contextlib.contextmanager
def celery_worker(
    *,
    database_url: str,
    settings: dict[str, str],
    log_dir: Path,
    pool: str = "prefork",
    concurrency: int = 2,
) -> Iterator[Child]:
    """A real ``celery worker`` on the benchmark database, consuming the queue named in
    ``settings["CELERY_TASK_DEFAULT_QUEUE"]`` (purged first)."""
    from smsadmin.celery import app

    app.control.purge()
    arguments = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "smsadmin",
        "worker",
        "--loglevel=INFO",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "-n",
        f"bench-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with child_process(
        "celery-worker",
        arguments,
        environment=django_environment(database_url, **settings),
        log_dir=log_dir,
        ready_text=" ready.",
    ) as child:
        yield child


def bench_queue(name: str) -> str:
    """A queue name of the benchmark's own, so that no other worker takes its tasks."""
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


def wait_until(
    condition: Callable[[], bool], *, timeout: float, every: float = 0.1, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_http(url: str) -> bool:
    """True once something answers HTTP at ``url`` (any status)."""
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _get_json(url: str, *, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


# --- figures ---------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_target(description: str, *, passed: bool) -> None:
    print(f"target: {description}: {verdict(passed)}")


def machine_line() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f} (1 / 5 min)"


def sliding_window_maximum(times: Sequence[float], weights: Sequence[int], width: float) -> int:
    """The largest total weight of events inside any window ``[t, t + width)``; ``times``
    sorted ascending. Windows that start on an event are enough to find it."""
    best = total = 0
    end = 0
    for start in range(len(times)):
        while end < len(times) and times[end] < times[start] + width:
            total += weights[end]
            end += 1
        best = max(best, total)
        total -= weights[start]
    return best


def mean_sliding_window(
    times: Sequence[float], weights: Sequence[int], width: float, step: float = 0.001
) -> float:
    """The average total weight inside ``[t, t + width)`` over every start ``t`` from the
    first event to ``width`` before the last (``times`` sorted): the rate held, counted
    the way the limit is, without the edge effects of whole-second buckets."""
    import bisect
    import itertools

    prefix = [0, *itertools.accumulate(weights)]
    starts = int((times[-1] - width - times[0]) / step)
    if starts <= 0:
        return math.nan
    total = 0
    for index in range(starts + 1):
        start = times[0] + index * step
        total += (
            prefix[bisect.bisect_left(times, start + width)]
            - prefix[bisect.bisect_left(times, start)]
        )
    return total / (starts + 1)


# --- CPU accounting (Linux /proc): figures that a busy machine does not distort ----------
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by these processes (vanished ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS_PER_SECOND


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def database_backends(database_url: str) -> list[int]:
    """PostgreSQL server processes serving the benchmark database (same machine)."""
    from django.db import connection

    name = database_url.rsplit("/", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        return [row[0] for row in cursor.fetchall()]


def redis_server_pid() -> int | None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()
