"""Benchmark: a sender limited to N segments per second holds N, with no one-second window
over N, measured where it counts: at the fake Twilio's receive timestamps.

Queues enough messages (every third one 2 segments long, the others 1) to keep the
sender busy for ``--seconds``, starts the fake Twilio (50 ms) and a Celery worker (two
processes, two task chains: both share the limit through Redis) with
``SMS_RATE_LIMIT_PER_SECOND=N``, and sends them. From the fake's request log (segments
counted from each body) it prints the rate held over the run's whole seconds, the
seconds' spread and the fullest one-second window (sliding, starting at any request).
Then it sends the same load with the limit lifted, as a sender without a limiter
would, and prints that run's fullest window.

    .venv/bin/python bench/ratelimit.py                      # N = 50 for 60 s
    .venv/bin/python bench/ratelimit.py --rate 100 --seconds 20

Targets: the rate within 2 % of N over the run; no one-second window over N.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

TOLERANCE = 0.02
TWO_SEGMENTS_EVERY = 3


def main(argv: list[str]) -> int:
    parser = support.parser_for("ratelimit", __doc__)
    parser.add_argument("--rate", type=int, default=50, help="N, segments per second")
    parser.add_argument("--seconds", type=int, default=60, help="how long the load lasts")
    parser.add_argument("--latency-ms", type=float, default=50)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.seconds = 10
    support.stop_cleanly_on_sigterm()
    queue = support.bench_queue("ratelimit")
    support.set_up_django(arguments.database_url, CELERY_TASK_DEFAULT_QUEUE=queue)
    support.flush_redis()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ratelimit-") as folder:
            return _run(arguments, queue, Path(folder))
    finally:
        support.flush_redis()
        support.empty_delivery_tables()


def _run(arguments, queue: str, log_dir: Path) -> int:  # type: ignore[no-untyped-def]
    rate = arguments.rate
    # Segments for the whole run, plus one window: the limiter lets the first window's
    # worth go at once, so the load keeps the sender busy for all of ``--seconds``.
    segments_per_message = (TWO_SEGMENTS_EVERY + 1) / TWO_SEGMENTS_EVERY
    messages = math.ceil(rate * (arguments.seconds + 1) / segments_per_message)
    print(
        f"{support.machine_line()}\n"
        f"load: {messages:,} messages (every {TWO_SEGMENTS_EVERY}rd 2 segments) for "
        f"N = {rate} segments/s over about {arguments.seconds} s; worker: prefork, 2 "
        f"processes, 2 task chains sharing the limit through Redis"
    )
    with support.fake_twilio(log_dir=log_dir, latency_ms=arguments.latency_ms) as fake:
        limited = _send(fake, arguments, queue, log_dir, messages=messages, rate=rate)
        unlimited = _send(fake, arguments, queue, log_dir, messages=messages, rate=1_000_000)
    if limited is None or unlimited is None:
        return 1

    held, seconds, spread, fullest = _figures(limited, rate)
    print(
        f"with the limiter (N = {rate}): {sum(limited.values()):,} segments at the fake over "
        f"{seconds:.1f} s; rate held (mean of every one-second window): {held:.2f} "
        f"segments/s ({(held / rate - 1) * 100:+.2f} % of N); whole seconds: {spread}; "
        f"fullest one-second window: {fullest} segments; windows over N: "
        f"{_windows_over(limited, rate)}"
    )
    _, naive_seconds, _, naive_fullest = _figures(unlimited, rate)
    print(
        f"same load without a limiter: all sent in {naive_seconds:.1f} s; fullest "
        f"one-second window: {naive_fullest} segments ({naive_fullest / rate:.1f}x N)"
    )
    support.print_target(
        f"rate within {TOLERANCE:.0%} of N = {rate} ({held:.2f}/s)",
        passed=abs(held - rate) <= TOLERANCE * rate,
    )
    support.print_target(
        f"no one-second window over N = {rate} (fullest {fullest})", passed=fullest <= rate
    )
    return 0


def _send(  # type: ignore[no-untyped-def]
    fake: support.FakeTwilioProcess,
    arguments,
    queue: str,
    log_dir: Path,
    *,
    messages: int,
    rate: int,
) -> Counter[float] | None:
    """Send the load through a worker limited to ``rate``; segments by receive time."""
    from django.db import transaction

    from delivery.dispatch import dispatch_batch
    from delivery.segments import analyze

    support.empty_delivery_tables()
    support.empty_member_tables()  # no opt-out or suppression may cancel a message
    support.flush_redis()  # an empty window: the earlier run's sends do not count
    batch_id = support.create_batch(label=f"Bench: rate limit {rate}")
    support.insert_messages(batch_id=batch_id, count=messages, two_segment_every=TWO_SEGMENTS_EVERY)
    settings = support.worker_settings(
        fake,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        SMS_RATE_LIMIT_PER_SECOND=str(rate),
        SMS_SEND_TASK_CHAINS="2",
    )
    fake.reset()
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            support.celery_worker(
                database_url=arguments.database_url, settings=settings, log_dir=log_dir
            )
        )
        with transaction.atomic():
            dispatch_batch(batch_id=batch_id, chains=2)

        def all_recorded() -> bool:
            counts = support.count_by_status(batch_id)
            return counts.get("pending", 0) + counts.get("sending", 0) == 0

        limit_seconds = 120 + 3 * messages / min(rate, 1000)
        support.wait_until(all_recorded, timeout=limit_seconds, every=0.5, what="sending")
    counts = support.count_by_status(batch_id)
    sent: Counter[float] = Counter()
    for request in fake.requests():
        if request["method"] == "POST" and request["status"] == 201:
            sent[request["received_at"]] += analyze(request["form"]["Body"]).segments
    if counts != {"accepted": messages} or sum(sent.values()) != _expected_segments(messages):
        print(f"ERROR: statuses {counts}, {sum(sent.values())} segments at the fake")
        return None
    return sent


def _windows_over(sent: Counter[float], rate: int) -> str:
    """How many requests open a one-second window over the limit, and by how much at most."""
    times = sorted(sent)
    over = []
    end = total = 0
    for start in range(len(times)):
        while end < len(times) and times[end] < times[start] + 1.0:
            total += sent[times[end]]
            end += 1
        if total > rate:
            over.append(total - rate)
        total -= sent[times[start]]
    return f"{len(over)} of {len(times)} (by up to {max(over, default=0)} segments)"


def _expected_segments(messages: int) -> int:
    # insert_messages makes message i 2 segments long when i % TWO_SEGMENTS_EVERY == 0.
    return messages + len(range(0, messages, TWO_SEGMENTS_EVERY))


def _figures(sent: Counter[float], rate: int) -> tuple[float, float, str, int]:
    """(mean segments in a one-second window, seconds of sending, the spread of whole
    seconds, the fullest window)."""
    times = sorted(sent)
    weights = [sent[at] for at in times]
    start = times[0]
    per_second: Counter[int] = Counter()
    for at, weight in zip(times, weights, strict=True):
        per_second[int(at - start)] += weight
    whole = [per_second[second] for second in range(int(times[-1] - start))]
    spread = f"min {min(whole)}, max {max(whole)}" if whole else "n/a"
    return (
        support.mean_sliding_window(times, weights, 1.0),
        times[-1] - start,
        spread,
        support.sliding_window_maximum(times, weights, 1.0),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
