"""Run a real Celery worker process against the test database, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    hostname: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_environment() -> dict[str, str]:
    """The environment of a worker that uses this test run's database and Redis."""
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}"
    )
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="smsadmin.settings",
        DJANGO_ENV="test",
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    return environment


@contextmanager
def running_worker(
    log_dir: Path, *, concurrency: int = 2, extra_environment: dict[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """Start ``celery worker`` in its own process group, wait until it is ready, stop it.

    The worker's queue is purged first: tasks left by an earlier test must not run here.
    """
    from smsadmin.celery import app

    app.control.purge()
    hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    environment = worker_environment()
    environment.update(extra_environment or {})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smsadmin",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "-n",
                hostname,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=BASE_DIR,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process=process, log_path=log_path, hostname=hostname)
    try:
        _wait_until_ready(worker)
        yield worker
    finally:
        worker.stop()


def _wait_until_ready(worker: WorkerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early:\n{worker.log()}")
        if " ready." in worker.log():
            return
        time.sleep(0.1)
    worker.kill()
    raise RuntimeError(f"Celery worker not ready after {timeout} s:\n{worker.log()}")
