"""The Celery app: configured from Django settings (``CELERY_*``), beat on the database."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsadmin.settings")

app = Celery("smsadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
