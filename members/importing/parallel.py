"""Validate batches of rows in worker processes, so that a big file uses every core.

Checking phone numbers costs most of an import's time (tens of microseconds a number,
pure Python): on the benchmark machine one process validating a 100,000-row file takes
longer than the whole target. Worker processes validate batches while this process
reads the file and streams results to the database; results come back in file order.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from members.importing.reader import RawRow
from members.importing.rows import RowError, RowValidator, ValidRow

BatchResult = tuple[list[ValidRow], list[RowError]]

# Below this size worker processes cost more than they save.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024

_worker_validator: RowValidator | None = None


def default_process_count(file_size: int) -> int:
    """How many validation processes to use for a file of ``file_size`` bytes (0: none)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (
        file_size < PARALLEL_MIN_BYTES
        or (cores or 1) < 2
        # A daemonic process may not start processes of its own.
        or multiprocessing.current_process().daemon
        or "fork" not in multiprocessing.get_all_start_methods()
        # Forking a process that runs other threads may copy a lock that is held.
        or threading.active_count() > 1
    ):
        return 0
    return min(cores or 1, 4)


def validated_batches(
    batches: Iterable[list[RawRow]], validator: RowValidator, *, processes: int
) -> Iterator[BatchResult]:
    """Each batch's valid rows and errors, in order; ``processes=0`` validates here."""
    batches = iter(batches)
    # The first batch is validated here, in any case: it loads the phone metadata and
    # fills the regular-expression caches, which forked workers then inherit warm
    # instead of each paying for them.
    for batch in batches:
        yield validator.validate_batch(batch)
        break
    if processes <= 0:
        for batch in batches:
            yield validator.validate_batch(batch)
        return
    # fork: the workers start in milliseconds with the phone metadata already loaded.
    # They never touch the database connection they inherit, and leave with os._exit.
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_install_validator,
        initargs=(validator,),
    ) as pool:
        # A few batches in flight per worker: enough to keep them busy, and memory flat
        # whatever the size of the file.
        in_flight: deque[Future[BatchResult]] = deque()
        for batch in batches:
            in_flight.append(pool.submit(_validate_batch, batch))
            if len(in_flight) >= 2 * processes:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


def _install_validator(validator: RowValidator) -> None:
    global _worker_validator
    _worker_validator = validator
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # The phone metadata is millions of long-lived objects that every full garbage
    # collection would walk again, a quarter of the validation time: leave them out.
    gc.freeze()


def _exit_with_parent(parent_pid: int) -> None:
    # A parent killed outright (a task's hard time limit) cannot stop its workers, and
    # they would wait for batches forever.
    while os.getppid() == parent_pid:
        time.sleep(1)
    os._exit(1)


def _validate_batch(batch: list[RawRow]) -> BatchResult:
    if _worker_validator is None:
        raise RuntimeError("The validation worker was started without its validator.")
    return _worker_validator.validate_batch(batch)
