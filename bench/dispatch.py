"""Benchmark: how many Celery tasks a million-message campaign needs, and what enqueuing
them costs, against one task per message.

Our dispatch (``delivery.dispatch``) enqueues ``SMS_SEND_TASK_CHAINS`` tasks when the launch
commits; each task sends up to ``MESSAGES_PER_TASK`` messages and enqueues its successor
while due messages remain. So a batch of N messages takes about
``chains + ceil(N / MESSAGES_PER_TASK)`` tasks in all. This benchmark times the launch's
part (``dispatch_batch`` and its commit) and enqueuing every task of the campaign with the
real ``send_batch_messages.delay``, then ``.delay()`` of a one-message task on a sample
(20,000 calls), extrapolated to N. Everything goes to a queue of its own in Redis
database 15, emptied afterwards; no worker runs.

    .venv/bin/python bench/dispatch.py                       # N = 1,000,000
    .venv/bin/python bench/dispatch.py --messages 5000000

Target: a 1,000,000-message campaign needs no more than a few thousand tasks (at most
5,000 here), enqueued in well under a second.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

# bench/support.py, whether run as a script or by bench/run.py (which runs this file as
# a module named "bench", so ``from bench import support`` would find this very file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

MAX_TASKS = 5_000  # "a few thousand"
MAX_ENQUEUE_SECONDS = 1.0


def main(argv: list[str]) -> int:
    parser = support.parser_for("dispatch", __doc__)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the batch")
    parser.add_argument(
        "--naive-sample", type=int, default=20_000, help=".delay() calls of one-message tasks"
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.naive_sample = 2_000
    support.stop_cleanly_on_sigterm()
    queue = support.bench_queue("dispatch")
    support.set_up_django(arguments.database_url, CELERY_TASK_DEFAULT_QUEUE=queue)
    support.flush_redis()
    try:
        return _run(arguments.messages, arguments.naive_sample, queue)
    finally:
        support.flush_redis()


def _run(messages: int, naive_sample: int, queue: str) -> int:
    from django.db import transaction

    from delivery.dispatch import MESSAGES_PER_TASK, dispatch_batch, parallel_chains
    from delivery.tasks import send_batch_messages

    chains = parallel_chains()
    tasks = chains + math.ceil(messages / MESSAGES_PER_TASK)
    print(
        f"{support.machine_line()}\n"
        f"our dispatch: {messages:,} messages = {chains} chains + ceil({messages:,} / "
        f"{MESSAGES_PER_TASK:,} messages per task) = {tasks:,} tasks in all"
    )

    support.empty_delivery_tables()
    batch_id = support.create_batch(label="Bench: dispatch")
    started = time.perf_counter()
    with transaction.atomic():
        dispatch_batch(batch_id=batch_id)
    launch_seconds = time.perf_counter() - started
    print(
        f"  at launch: dispatch_batch + commit enqueued {_queue_length(queue)} tasks "
        f"in {launch_seconds * 1000:.1f} ms (the rest are enqueued by the tasks, one each)"
    )
    _empty_queue(queue)

    started = time.perf_counter()
    for _ in range(tasks):
        send_batch_messages.delay(batch_id)
    ours_seconds = time.perf_counter() - started
    enqueued = _queue_length(queue)
    print(
        f"  all {tasks:,} tasks of the campaign: {ours_seconds * 1000:.0f} ms of "
        f"send_batch_messages.delay() ({enqueued:,} in the queue)"
    )
    _empty_queue(queue)

    naive = _naive_task()
    started = time.perf_counter()
    for message_id in range(naive_sample):
        naive.delay(message_id)
    naive_seconds = time.perf_counter() - started
    naive_estimate = naive_seconds / naive_sample * messages
    print(
        f"one task per message: {messages:,} tasks; .delay() measured on {naive_sample:,} "
        f"calls ({_queue_length(queue):,} in the queue): {naive_sample / naive_seconds:,.0f} "
        f"tasks/s, extrapolated to {messages:,}: {naive_estimate:.1f} s of enqueuing "
        f"(and {messages:,} task executions for the workers)"
    )
    _empty_queue(queue)
    print(
        f"our dispatch needs {messages / tasks:,.0f}x fewer tasks; enqueuing them is "
        f"{naive_estimate / ours_seconds:,.0f}x faster ({ours_seconds:.3f} s against "
        f"{naive_estimate:.1f} s)"
    )
    support.print_target(
        f"a {messages:,}-message campaign in <= {MAX_TASKS:,} tasks ({tasks:,}), "
        f"enqueued in <= {MAX_ENQUEUE_SECONDS:.0f} s ({ours_seconds:.3f} s)",
        passed=tasks <= MAX_TASKS and ours_seconds <= MAX_ENQUEUE_SECONDS,
    )
    support.empty_delivery_tables()
    return 0


def _naive_task():  # type: ignore[no-untyped-def]
    """A one-message task, as the naive design would have; no worker ever runs it."""
    from smsadmin.celery import app

    @app.task(name="bench.send_one_message")
    def send_one_message(message_id: int) -> None:
        raise NotImplementedError  # enqueued only

    return send_one_message


def _queue_length(queue: str) -> int:
    from smsadmin.celery import app

    with app.connection_for_write() as connection:
        return connection.default_channel.client.llen(queue)


def _empty_queue(queue: str) -> None:
    from smsadmin.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.client.delete(queue)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
