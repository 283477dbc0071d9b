"""The test run's environment, loaded by pytest before Django starts (``-p`` in addopts).

Tests run against real PostgreSQL and Redis on this machine. Each pytest-xdist worker
gets its own Redis database so that queues, locks and rate-limit buckets of parallel
workers never meet; pytest-django already gives each worker its own test database.
"""

import os

os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/smsadmin")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_redis_db = 1 + int(_worker) % 15 if _worker.isdigit() else 1
os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{_redis_db}")
# The real twilio SDK rewrites its host for these; tests talk to the fake on loopback.
os.environ.pop("TWILIO_EDGE", None)
os.environ.pop("TWILIO_REGION", None)
