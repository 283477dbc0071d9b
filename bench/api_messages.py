"""Benchmark: the JSON API's send (POST /api/v1/messages) through gunicorn on loopback,
driven by wrk, against the same requests sent one at a time.

Creates an API key (scopes send and read, a rate limit no run reaches) in the benchmark
database, writes one JSON body per request (``{"to": ..., "body": ...}``, a different
valid US number each, none opted out or suppressed), starts ``gunicorn smsadmin.wsgi`` on
the benchmark database, warms it up, and lets wrk (``bench/api_messages.lua``) post the
bodies with ``Authorization: Api-Key <key>``. Prints requests/s, latency p50/p90/p99, the
non-2xx count (every answer must be a 202), the messages created in the database against
the 202s, and the CPU each request cost gunicorn, PostgreSQL, Redis and wrk (from /proc: a
busy machine slows a run down but hardly changes these). Then it sends requests one at a
time (a new connection each) and prints the same figures and the ratio.

No Celery worker runs: the messages stay pending, and the API enqueues at most one task
per trickle window (two a second) into a queue of the benchmark's own, deleted at the end
with the messages, the batches, the key and its rate counters.

    .venv/bin/python bench/api_messages.py
    .venv/bin/python bench/api_messages.py --worker-class sync --workers 3 --threads 1

Needs wrk (Debian: ``apt-get install wrk``). Target (2 cores, wrk, PostgreSQL and Redis on
the same machine): at least 600 requests/s with p99 at most 50 ms, every answer a 202 and
one message in the database for each.
"""

from __future__ import annotations

import http.client
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

PATH = "/api/v1/messages"
TARGET_PER_SECOND = 600
TARGET_P99_MS = 50
LUA_SCRIPT = Path(__file__).resolve().parent / "api_messages.lua"
BODY = "Hi {index}, the community garden opens Saturday at 10. Reply STOP to opt out."


def main(argv: list[str]) -> int:
    parser = support.parser_for("api_messages", __doc__)
    parser.add_argument(
        "--requests", type=int, default=100_000, help="distinct bodies (numbers) for wrk"
    )
    parser.add_argument("--seconds", type=int, default=20, help="length of the wrk run")
    # Two processes for two cores, two threads each to overlap the database round trips;
    # gthread keeps connections alive (sync workers close each one). Measured on 2 busy
    # cores: sync x3 about as fast but less steady; gthread x3 with one thread each
    # slower, as the kept-alive connections end up on one or two of the three workers,
    # each serving its own one at a time.
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--connections", type=int, default=None, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--serial-requests", type=int, default=500)
    parser.add_argument(
        "--settings",
        default="smsadmin.settings",
        help="DJANGO_SETTINGS_MODULE of gunicorn (to try a settings change)",
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.requests, arguments.seconds, arguments.serial_requests = 20_000, 5, 100
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian), then run this again")
        return 2
    support.stop_cleanly_on_sigterm()
    queue = support.bench_queue("api")
    support.set_up_django(arguments.database_url, CELERY_TASK_DEFAULT_QUEUE=queue)
    from delivery.api.models import ApiKey

    support.empty_delivery_tables()
    api_key, key = ApiKey.objects.create_key(
        name="bench", scopes=["send", "read"], rate_limit_per_minute=10_000_000
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
            return _run(arguments, Path(folder), key, queue)
    finally:
        support.empty_delivery_tables()
        api_key.delete()
        _forget_redis_keys(api_key.prefix, queue)


def _run(arguments, folder: Path, key: str, queue: str) -> int:  # type: ignore[no-untyped-def]
    connections = arguments.connections or 2 * arguments.workers * arguments.threads
    started = time.perf_counter()
    phones = _textable_phones(arguments.requests + arguments.serial_requests)
    bodies = [
        json.dumps({"to": phone, "body": BODY.format(index=index)})
        for index, phone in enumerate(phones)
    ]
    wrk_bodies, serial_bodies = bodies[: arguments.requests], bodies[arguments.requests :]
    requests_path = folder / "requests.jsonl"
    requests_path.write_text("".join(f"{body}\n" for body in wrk_bodies))
    print(
        f"{support.machine_line()}\n"
        f"{len(wrk_bodies):,} JSON bodies for wrk + {len(serial_bodies):,} for the serial "
        f"client, each to a different number (none opted out or suppressed), written in "
        f"{time.perf_counter() - started:.1f} s\n"
        f"gunicorn: {arguments.workers} workers, --worker-class {arguments.worker_class}, "
        f"--threads {arguments.threads}, {arguments.settings}; wrk: {arguments.wrk_threads} "
        f"thread(s), {connections} connections, {arguments.seconds} s"
    )
    port = support.free_port()
    environment = support.django_environment(
        arguments.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        CELERY_TASK_DEFAULT_QUEUE=queue,
        DJANGO_SETTINGS_MODULE=arguments.settings,
    )
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "smsadmin.wsgi",
        f"--bind=127.0.0.1:{port}",
        f"--workers={arguments.workers}",
        f"--worker-class={arguments.worker_class}",
        f"--threads={arguments.threads}",
        "--log-level=warning",
    ]
    base_url = f"http://127.0.0.1:{port}"
    wrk_key = (requests_path, key)
    with support.child_process(
        "gunicorn",
        gunicorn,
        environment=environment,
        log_dir=folder,
        ready=lambda: support.answers_http(base_url + PATH),
    ) as server:
        # Every worker imports the views, opens its database and Redis connections and
        # creates the day's API batch first.
        warm_up = _wrk(base_url, wrk_key, arguments, connections, seconds=2)
        created_before = _settled_message_count()
        servers = support.process_tree(server.process.pid)
        redis_pid = support.redis_server_pid()
        redis_pids = [redis_pid] if redis_pid else []

        def cpu() -> tuple[float, ...]:
            return (
                support.cpu_seconds(servers),
                support.cpu_seconds(redis_pids),
                _children_cpu(),
            )

        # A worker that got no connection in the warm-up opens its database connection
        # during the run: the backends are listed again afterwards (a new one counts
        # from zero).
        backends_before = _cpu_by_pid(support.database_backends(arguments.database_url))
        workers_before = _cpu_by_pid(servers)
        before = cpu()
        result = _wrk(base_url, wrk_key, arguments, connections, seconds=arguments.seconds)
        after = cpu()
        workers_after = _cpu_by_pid(servers)
        backends_after = _cpu_by_pid(support.database_backends(arguments.database_url))
        created = _settled_message_count() - created_before
        serial = _serial(port, key, serial_bodies)
        serial_created = _settled_message_count() - created_before - created
    distinct = _distinct_phones()

    rate = result["requests"] / (result["duration_us"] / 1e6)
    p50, p90, p99 = (result[f"{p}_us"] / 1000 for p in ("p50", "p90", "p99"))
    socket_errors = sum(
        result[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    not_202 = result["requests"] - result["accepted"]
    print(
        f"wrk: {result['requests']:,} requests in {result['duration_us'] / 1e6:.1f} s = "
        f"{rate:,.0f} requests/s; latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} "
        f"ms, max {result['max_us'] / 1000:.1f} ms; non-2xx: {result['non_2xx_3xx']}, "
        f"not 202: {not_202}, socket errors: {socket_errors}"
    )
    database_cpu = sum(
        seconds - backends_before.get(pid, 0.0) for pid, seconds in backends_after.items()
    )
    gunicorn_cpu, redis_cpu, wrk_cpu = (
        end - start for start, end in zip(before, after, strict=True)
    )
    cpu_ms = [
        seconds * 1000 / result["requests"]
        for seconds in (gunicorn_cpu, database_cpu, redis_cpu, wrk_cpu)
    ]
    print(
        f"  CPU per request: gunicorn {cpu_ms[0]:.2f} ms, PostgreSQL ({len(backends_after)} "
        f"backends) {cpu_ms[1]:.2f} ms, Redis {cpu_ms[2]:.2f} ms, wrk {cpu_ms[3]:.2f} ms; "
        f"{sum(cpu_ms):.2f} ms in all, so 2 cores alone would allow "
        f"{2000 / sum(cpu_ms):,.0f} requests/s"
    )
    # With kept-alive connections (gthread) a worker keeps every connection it accepted:
    # one may end up with most of them while the other idles.
    shares = sorted(
        (seconds - workers_before.get(pid, 0.0) for pid, seconds in workers_after.items()),
        reverse=True,
    )
    busy = [share for share in shares if share > 0.05 * max(gunicorn_cpu, 1e-9)]
    print(
        "  gunicorn CPU by process: "
        + " / ".join(f"{share * 100 / max(gunicorn_cpu, 1e-9):.0f}%" for share in busy)
    )
    # wrk drops the answers still in flight when its time is up (at most one a
    # connection); the server creates those messages all the same.
    in_flight = created - result["accepted"]
    created_ok = 0 <= in_flight <= connections
    print(
        f"  messages created during the run: {created:,} = {result['accepted']:,} 202s + "
        f"{in_flight} answered after wrk stopped (at most {connections}, one a connection): "
        f"{'OK' if created_ok else 'WRONG'}; warm-up: {warm_up['requests']:,} requests, "
        f"{warm_up['requests'] - warm_up['accepted']} not 202; {distinct:,} distinct numbers "
        f"in the database"
    )
    serial_ok = serial["not_202"] == 0 and serial_created == len(serial_bodies)
    print(
        f"serial client (one request at a time, a new connection each): {serial['rate']:,.0f} "
        f"requests/s; p50 {serial['p50']:.1f} ms, p99 {serial['p99']:.1f} ms; not 202: "
        f"{serial['not_202']}; messages created: {serial_created:,} of {len(serial_bodies):,}"
    )
    print(f"throughput of gunicorn + wrk: {rate / serial['rate']:.1f}x the serial rate")
    failures = not_202 + socket_errors + (not created_ok) + (not serial_ok)
    support.print_target(
        f">= {TARGET_PER_SECOND:,} requests/s ({rate:,.0f}), p99 <= {TARGET_P99_MS} ms "
        f"({p99:.1f}), every answer a 202 with its message ({failures} failures)",
        passed=rate >= TARGET_PER_SECOND and p99 <= TARGET_P99_MS and failures == 0,
    )
    return 0


def _textable_phones(count: int) -> list[str]:
    """``count`` distinct valid US numbers (``support.phone_for``), skipping any that an
    active opt-out or suppression blocks (another benchmark may have left some)."""
    from django.db import connection

    # The fan-out benchmark opts out and suppresses a few percent of the same numbers.
    wanted = 2 * count + 1_000
    candidates = [support.phone_for(index) for index in range(wanted)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phone FROM members_optout WHERE lifted_at IS NULL AND phone = ANY(%s) "
            "UNION SELECT phone FROM members_suppression WHERE lifted_at IS NULL "
            "AND phone = ANY(%s)",
            [candidates, candidates],
        )
        blocked = {row[0] for row in cursor.fetchall()}
    phones = [phone for phone in candidates if phone not in blocked][:count]
    if len(phones) < count:
        raise SystemExit(f"only {len(phones):,} of {count:,} numbers may be texted")
    return phones


def _settled_message_count() -> int:
    """Messages in the database, once requests still being answered have committed."""
    from django.db import connection

    last = -1
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM delivery_message")
            (count,) = cursor.fetchone()
        if count == last:
            return count
        last = count
        time.sleep(0.3)


def _distinct_phones() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT phone) FROM delivery_message")
        return cursor.fetchone()[0]


def _wrk(base_url: str, wrk_key: tuple[Path, str], arguments, connections: int, *, seconds: int):  # type: ignore[no-untyped-def]
    requests_path, key = wrk_key
    command = [
        "wrk",
        f"--threads={arguments.wrk_threads}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={LUA_SCRIPT}",
        base_url,
        "--",
        str(requests_path),
        "127.0.0.1",
        str(arguments.wrk_threads),
        key,
    ]
    output = subprocess.run(  # noqa: S603 - wrk on loopback, our own arguments
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_RESULT"))
    return {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", line)}


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: support.cpu_seconds([pid]) for pid in pids}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (wrk runs to completion)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _serial(port: int, key: str, bodies: list[str]) -> dict[str, float]:
    """One request at a time, a new connection each (the naive client)."""
    latencies = []
    not_202 = 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(
                "POST",
                PATH,
                body=body.encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
            )
            response = connection.getresponse()
            response.read()
            not_202 += response.status != 202
        finally:
            connection.close()
        latencies.append(time.perf_counter() - sent)
    return {
        "rate": len(bodies) / (time.perf_counter() - started),
        "p50": support.percentile(latencies, 0.5) * 1000,
        "p99": support.percentile(latencies, 0.99) * 1000,
        "not_202": not_202,
    }


def _forget_redis_keys(prefix: str, queue: str) -> None:
    """The key's rate counters, the batches' trickle windows and the benchmark's queue."""
    import redis

    client = redis.Redis.from_url(support.REDIS_URL)
    try:
        for pattern in (f"smsadmin:api-rate:{prefix}:*", "smsadmin:trickle:*", f"*{queue}*"):
            names = list(client.scan_iter(match=pattern, count=1_000))
            if names:
                client.delete(*names)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
