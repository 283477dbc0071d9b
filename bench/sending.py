"""Benchmark: messages per second through a real Celery worker and the real twilio SDK to the
fake Twilio answering in 50 ms, status writes included, against a serial sender.

Puts N pending messages in one batch (SQL), starts the fake Twilio
(``python -m smsadmin.fakes.twilio --latency-ms 50 --no-callbacks``) and a Celery worker
(prefork, 2 processes by default) in processes of their own, dispatches the batch as a
launch does, and waits until every message is ``accepted`` in PostgreSQL. The rate is
counted three ways: end to end (dispatch to the last status written), at the fake
between its first and last request, and per second at the fake (the slowest full
second shows whether the rate holds). The rate limit is set far above the rate.
Then it sends a sample the naive way: the SDK's synchronous client, one message after
another, each status written before the next send.

    .venv/bin/python bench/sending.py                         # 20,000 messages
    .venv/bin/python bench/sending.py --messages 50000 --processes 2 --concurrency 64

Target (2 cores, PostgreSQL, Redis and the fake beside it): at least 1,000 messages/s
sustained.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

TARGET_PER_SECOND = 1_000


def main(argv: list[str]) -> int:
    parser = support.parser_for("sending", __doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--pool", default="prefork", help="Celery pool: prefork, threads...")
    parser.add_argument("--processes", type=int, default=2, help="worker pool processes")
    parser.add_argument("--concurrency", type=int, default=64, help="SMS_SEND_CONCURRENCY")
    parser.add_argument("--chunk-size", type=int, default=200, help="SMS_SEND_CHUNK_SIZE")
    parser.add_argument("--chains", type=int, default=None, help="SMS_SEND_TASK_CHAINS")
    parser.add_argument("--serial-sample", type=int, default=200, help="serial sender sample")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.messages, arguments.serial_sample = 3_000, 40
    support.stop_cleanly_on_sigterm()
    queue = support.bench_queue("sending")
    support.set_up_django(arguments.database_url, CELERY_TASK_DEFAULT_QUEUE=queue)
    support.flush_redis()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sending-") as folder:
            return _run(arguments, queue, Path(folder))
    finally:
        support.flush_redis()
        support.empty_delivery_tables()


def _run(arguments, queue: str, log_dir: Path) -> int:  # type: ignore[no-untyped-def]
    chains = arguments.chains or arguments.processes
    settings = {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SMS_RATE_LIMIT_PER_SECOND": "1000000",
        "SMS_SEND_CONCURRENCY": str(arguments.concurrency),
        "SMS_SEND_CHUNK_SIZE": str(arguments.chunk_size),
        "SMS_SEND_TASK_CHAINS": str(chains),
    }
    print(
        f"{support.machine_line()}\n"
        f"worker: --pool={arguments.pool} --concurrency={arguments.processes}; "
        f"SMS_SEND_CONCURRENCY={arguments.concurrency} SMS_SEND_CHUNK_SIZE="
        f"{arguments.chunk_size} SMS_SEND_TASK_CHAINS={chains}; fake Twilio answering in "
        f"{arguments.latency_ms:g} ms"
    )
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(
            support.fake_twilio(log_dir=log_dir, latency_ms=arguments.latency_ms)
        )
        worker = stack.enter_context(
            support.celery_worker(
                database_url=arguments.database_url,
                settings=support.worker_settings(fake, **settings),
                log_dir=log_dir,
                pool=arguments.pool,
                concurrency=arguments.processes,
            )
        )
        processes = {
            "worker": support.process_tree(worker.process.pid),
            "fake Twilio": [fake.child.process.pid],
            "Redis": [pid] if (pid := support.redis_server_pid()) else [],
        }
        before = {name: support.cpu_seconds(pids) for name, pids in processes.items()}
        passed = _measure_worker(fake, arguments.messages, chains)
        used = {
            name: (support.cpu_seconds(pids) - before[name]) * 1000 / arguments.messages
            for name, pids in processes.items()
        }
        print(
            "  CPU per message: "
            + ", ".join(f"{name} {milliseconds:.2f} ms" for name, milliseconds in used.items())
            + " (PostgreSQL not counted: its backends come and go with the tasks)"
        )
        serial_rate = _measure_serial(fake, arguments.serial_sample)
    print(
        f"serial sender (sync twilio client, one message at a time, status written after "
        f"each), measured on {arguments.serial_sample} messages: {serial_rate:,.1f} messages/s"
    )
    if passed is None:
        return 1
    rate = passed
    print(f"speed-up of the worker over the serial sender: {rate / serial_rate:,.0f}x")
    support.print_target(
        f">= {TARGET_PER_SECOND:,} messages/s sustained, end to end ({rate:,.0f}/s)",
        passed=rate >= TARGET_PER_SECOND,
    )
    return 0


def _measure_worker(fake: support.FakeTwilioProcess, messages: int, chains: int) -> float | None:
    """Send ``messages`` through the worker; print the figures; return the end-to-end rate."""
    from django.db import transaction

    from delivery.dispatch import dispatch_batch

    support.empty_delivery_tables()
    support.empty_member_tables()  # no opt-out or suppression may cancel a message
    batch_id = support.create_batch(label="Bench: sending")
    support.insert_messages(batch_id=batch_id, count=messages)
    support.vacuum_analyze("delivery_message", "delivery_batch")
    fake.reset()

    started = time.time()
    with transaction.atomic():
        dispatch_batch(batch_id=batch_id, chains=chains)

    def all_recorded() -> bool:
        counts = support.count_by_status(batch_id)
        return counts.get("pending", 0) + counts.get("sending", 0) == 0

    support.wait_until(all_recorded, timeout=60 + messages / 50, every=0.2, what="sending")
    finished = time.time()
    counts = support.count_by_status(batch_id)
    requests = [r for r in fake.requests() if r["method"] == "POST"]
    received = sorted(r["received_at"] for r in requests)
    phones = Counter(r["form"]["To"] for r in requests)
    if len(received) < 2 or received[-1] == received[0]:
        print(f"ERROR: the fake received {len(received)} messages; statuses: {counts}")
        return None
    end_to_end = messages / (finished - started)
    at_fake = (len(received) - 1) / (received[-1] - received[0])
    print(
        f"worker: {messages:,} messages in {finished - started:.2f} s end to end (dispatch "
        f"to the last status written) = {end_to_end:,.0f} messages/s; statuses: {counts}"
    )
    print(
        f"  at the fake: {len(requests):,} requests, first {received[0] - started:.2f} s "
        f"after dispatch, {at_fake:,.0f}/s from first to last; "
        f"{_per_second_line(received)}"
    )
    exact = counts == {"accepted": messages} and len(phones) == messages
    if not exact or max(phones.values()) != 1:
        print(f"ERROR: expected {messages:,} accepted messages, each sent once")
        return None
    return end_to_end


def _per_second_line(received: list[float]) -> str:
    """Requests in each full second at the fake (the ramp-up second and the last left out)."""
    start = received[0]
    buckets = Counter(int(at - start) for at in received)
    full = [buckets[second] for second in range(1, max(buckets))]  # skip 0 and the last
    if not full:
        return "too short for a full second"
    return (
        f"per full second: slowest {min(full):,}, median {sorted(full)[len(full) // 2]:,}, "
        f"fastest {max(full):,} over {len(full)} s"
    )


def _measure_serial(fake: support.FakeTwilioProcess, sample: int) -> float:
    """Messages per second of a one-at-a-time sender with the SDK's synchronous client."""
    from django.utils import timezone
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from delivery.models import Message

    support.empty_delivery_tables()
    batch_id = support.create_batch(label="Bench: serial")
    support.insert_messages(batch_id=batch_id, count=sample, first_index=10_000_000)
    client = Client(
        fake.account_sid,
        fake.auth_token,
        environment={},
        http_client=TwilioHttpClient(timeout=10),
    )
    client.api.base_url = fake.base_url
    pending = list(Message.objects.filter(batch_id=batch_id).order_by("id"))
    started = time.perf_counter()
    for message in pending:
        sent = client.messages.create(to=message.phone, from_=message.sender, body=message.body)
        now = timezone.now()
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.ACCEPTED,
            provider_sid=sent.sid,
            attempts=1,
            accepted_at=now,
            status_updated_at=now,
        )
    return sample / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
