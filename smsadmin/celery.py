"""The Celery app: configured from Django settings (``CELERY_*``), beat on the database."""

import os

from celery import Celery
from celery.signals import before_task_publish, worker_ready, worker_shutdown

from smsadmin import heartbeats

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsadmin.settings")

app = Celery("smsadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# What /health reads to know a worker and beat are alive (see smsadmin/heartbeats.py).
worker_ready.connect(heartbeats.start_worker_heartbeat, weak=False)
worker_shutdown.connect(heartbeats.stop_worker_heartbeat, weak=False)
before_task_publish.connect(heartbeats.record_beat_tick, weak=False)
