"""Benchmark: Twilio status callbacks (POST /webhooks/twilio/status) through gunicorn on
loopback, driven by wrk, against the same requests sent one at a time.

Puts messages with provider SIDs in the database (half ``accepted``, half ``sent``),
writes one signed callback per message (Twilio's fields; ``sent`` or ``delivered``;
``X-Twilio-Signature`` from ``twilio.request_validator.RequestValidator`` over
PUBLIC_BASE_URL + path), starts ``gunicorn smsadmin.wsgi`` on the benchmark database, warms
it up, and lets wrk (``bench/status_callbacks.lua``) replay the signed requests. Prints
requests/s, latency p50/p90/p99, the non-2xx count and what the callbacks did to the
messages, and the CPU each request cost gunicorn, PostgreSQL and wrk (from /proc: a busy
machine slows a run down but hardly changes these). Then it sends requests one at a time
(a new connection each) and prints the same figures.

    .venv/bin/python bench/status_callbacks.py
    .venv/bin/python bench/status_callbacks.py --worker-class sync --workers 3 --seconds 30

Needs wrk (Debian: ``apt-get install wrk``). Target (2 cores, wrk and PostgreSQL on the
same machine): at least 1,500 requests/s with p99 at most 50 ms, and every answer 2xx.
"""

from __future__ import annotations

import http.client
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

PATH = "/webhooks/twilio/status"
PUBLIC_BASE_URL = "https://sms.example.org"
AUTH_TOKEN = "bench" + "0" * 27
ACCOUNT_SID = "AC" + "0" * 32
TARGET_PER_SECOND = 1_500
TARGET_P99_MS = 50
LUA_SCRIPT = Path(__file__).resolve().parent / "status_callbacks.lua"


def main(argv: list[str]) -> int:
    parser = support.parser_for("status_callbacks", __doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages with SIDs")
    parser.add_argument("--seconds", type=int, default=20, help="length of the wrk run")
    # Two processes for two cores, two threads each to overlap the database round trips;
    # gthread keeps connections alive (sync workers close each one).
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
        arguments.messages, arguments.seconds, arguments.serial_requests = 10_000, 5, 100
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian), then run this again")
        return 2
    support.stop_cleanly_on_sigterm()
    support.set_up_django(arguments.database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-callbacks-") as folder:
            return _run(arguments, Path(folder))
    finally:
        support.empty_delivery_tables()


def _run(arguments, folder: Path) -> int:  # type: ignore[no-untyped-def]
    connections = arguments.connections or 2 * arguments.workers * arguments.threads
    messages = arguments.messages
    support.empty_delivery_tables()
    batch_id = support.create_batch(label="Bench: status callbacks")
    half = messages // 2
    support.insert_messages(batch_id=batch_id, count=half, status="accepted", with_sids=True)
    support.insert_messages(
        batch_id=batch_id, count=messages - half, status="sent", with_sids=True, first_index=half
    )
    support.vacuum_analyze("delivery_message", "delivery_earlystatus")
    requests_path = folder / "requests.tsv"
    started = time.perf_counter()
    lines = _signed_requests(messages, half)
    requests_path.write_text("".join(f"{signature}\t{body}\n" for signature, body in lines))
    print(
        f"{support.machine_line()}\n"
        f"{messages:,} messages with SIDs (half accepted, half sent); {len(lines):,} signed "
        f"callbacks (sent or delivered) written in {time.perf_counter() - started:.1f} s\n"
        f"gunicorn: {arguments.workers} workers, --worker-class {arguments.worker_class}, "
        f"--threads {arguments.threads}, {arguments.settings}; wrk: {arguments.wrk_threads} "
        f"thread(s), "
        f"{connections} connections, {arguments.seconds} s"
    )
    port = support.free_port()
    environment = support.django_environment(
        arguments.database_url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        ALLOWED_HOSTS="127.0.0.1",
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
    with support.child_process(
        "gunicorn",
        gunicorn,
        environment=environment,
        log_dir=folder,
        ready=lambda: support.answers_http(base_url + PATH),
    ) as server:
        # Every worker imports the views and opens its database connection first.
        _wrk(base_url, requests_path, arguments, connections, seconds=2)
        servers = support.process_tree(server.process.pid)
        backends = support.database_backends(arguments.database_url)
        before = (support.cpu_seconds(servers), support.cpu_seconds(backends), _children_cpu())
        result = _wrk(base_url, requests_path, arguments, connections, seconds=arguments.seconds)
        after = (support.cpu_seconds(servers), support.cpu_seconds(backends), _children_cpu())
        serial = _serial(port, lines[-arguments.serial_requests :])
    statuses = support.count_by_status(batch_id)

    rate = result["requests"] / (result["duration_us"] / 1e6)
    p50, p90, p99 = (result[f"{p}_us"] / 1000 for p in ("p50", "p90", "p99"))
    failures = sum(
        result[key]
        for key in ("non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    print(
        f"wrk: {result['requests']:,} requests in {result['duration_us'] / 1e6:.1f} s = "
        f"{rate:,.0f} requests/s; latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} "
        f"ms, max {result['max_us'] / 1000:.1f} ms; non-2xx: {result['non_2xx_3xx']}, "
        f"socket errors: {failures - result['non_2xx_3xx']}"
    )
    cpu = [
        (end - start) * 1000 / result["requests"] for start, end in zip(before, after, strict=True)
    ]
    print(
        f"  CPU per request: gunicorn {cpu[0]:.2f} ms, PostgreSQL backends {cpu[1]:.2f} ms, "
        f"wrk {cpu[2]:.2f} ms; {sum(cpu):.2f} ms in all, so 2 cores alone would allow "
        f"{2000 / sum(cpu):,.0f} requests/s"
    )
    print(f"  messages by status afterwards: {statuses}")
    print(
        f"serial client (one request at a time, a new connection each): {serial['rate']:,.0f} "
        f"requests/s; p50 {serial['p50']:.1f} ms, p99 {serial['p99']:.1f} ms; non-2xx: "
        f"{serial['failures']}"
    )
    print(f"throughput of gunicorn + wrk over the serial client: {rate / serial['rate']:.1f}x")
    support.print_target(
        f">= {TARGET_PER_SECOND:,} requests/s ({rate:,.0f}), p99 <= {TARGET_P99_MS} ms "
        f"({p99:.1f}), no failed request ({failures})",
        passed=rate >= TARGET_PER_SECOND and p99 <= TARGET_P99_MS and failures == 0,
    )
    return 0


def _signed_requests(messages: int, half: int) -> list[tuple[str, str]]:
    """One signed callback per message: sent or delivered, as Twilio would post it."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = PUBLIC_BASE_URL + PATH
    lines = []
    for index in range(messages):
        sid = f"SM{index:032x}"  # what support.insert_messages gave message ``index``
        # Accepted messages get "sent" or "delivered"; sent ones get "delivered".
        status = "sent" if index < half and index % 2 == 0 else "delivered"
        fields = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": support.phone_for(index),
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": support.SENDER,
            "ApiVersion": "2010-04-01",
        }
        if status == "delivered":
            fields["RawDlrDoneDate"] = "2511220700"
        lines.append((validator.compute_signature(url, fields), urlencode(fields)))
    return lines


def _wrk(base_url: str, requests_path: Path, arguments, connections: int, *, seconds: int):  # type: ignore[no-untyped-def]
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
    ]
    output = subprocess.run(  # noqa: S603 - wrk on loopback, our own arguments
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_RESULT"))
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (wrk runs to completion)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _serial(port: int, lines: list[tuple[str, str]]) -> dict[str, float]:
    """One request at a time, a new connection each (as Twilio calls back)."""
    latencies = []
    failures = 0
    started = time.perf_counter()
    for signature, body in lines:
        sent = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(
                "POST",
                PATH,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            )
            response = connection.getresponse()
            response.read()
            failures += not 200 <= response.status < 300
        finally:
            connection.close()
        latencies.append(time.perf_counter() - sent)
    return {
        "rate": len(lines) / (time.perf_counter() - started),
        "p50": support.percentile(latencies, 0.5) * 1000,
        "p99": support.percentile(latencies, 0.99) * 1000,
        "failures": failures,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
