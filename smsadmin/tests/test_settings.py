"""Settings come from the environment; production refuses unsafe values at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
STRONG_KEY = "k7Qp2vX9mR4tW8yB1nC6fH3jL5sD0gA2zE7uI9oP4qT6wY8xV1bN3mK5lJ7hG9fS"


def load_settings(**environment: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly this environment."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            (
                "DJANGO_",
                "DEBUG",
                "SECRET_KEY",
                "ALLOWED_HOSTS",
                "DATABASE_URL",
                "CELERY_",
                "REDIS_URL",
            )
        )
    }
    clean.update(DJANGO_SETTINGS_MODULE="smsadmin.settings", **environment)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.DEBUG, "
            "settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)",
        ],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_development_defaults_run_on_sqlite_with_debug():
    loaded = load_settings(DJANGO_ENV="development")
    assert loaded.returncode == 0, loaded.stderr
    debug, engine, _broker = loaded.stdout.split()
    assert (debug, engine) == ("True", "django_prometheus.db.backends.sqlite3")


@pytest.mark.parametrize(
    ("environment", "complaint"),
    [
        ({}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": "django-insecure-" + STRONG_KEY}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is empty"),
        ({"SECRET_KEY": STRONG_KEY, "DEBUG": "on"}, "DEBUG is on in production"),
        (
            {"SECRET_KEY": STRONG_KEY, "DATABASE_URL": ""},
            "DATABASE_URL is not set",
        ),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(environment, complaint):
    production = {
        "DJANGO_ENV": "production",
        "ALLOWED_HOSTS": "sms.example.org",
        "DATABASE_URL": "postgres://sms@db/sms",
    }
    production.update(environment)
    loaded = load_settings(**{key: value for key, value in production.items() if value})
    assert loaded.returncode != 0
    assert "Refusing to start with unsafe production settings" in loaded.stderr
    assert complaint in loaded.stderr


def test_production_starts_with_safe_settings():
    loaded = load_settings(
        DJANGO_ENV="production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="sms.example.org",
        DATABASE_URL="postgres://sms@db/sms",
        CELERY_BROKER_URL="redis://cache:6379/0",
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [
        "False",
        "django_prometheus.db.backends.postgresql",
        "redis://cache:6379/0",
    ]


def test_debug_off_outside_tests_is_held_to_production_rules():
    loaded = load_settings(DJANGO_ENV="development", DEBUG="off")
    assert loaded.returncode != 0
    assert "SECRET_KEY is missing or weak" in loaded.stderr


def test_unknown_environment_name_is_refused():
    loaded = load_settings(DJANGO_ENV="staging")
    assert loaded.returncode != 0
    assert "DJANGO_ENV must be development, test or production" in loaded.stderr


def test_celery_reliability_settings(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
        > settings.CELERY_TASK_TIME_LIMIT
    )
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"


def test_tests_run_on_postgresql_and_redis(settings):
    # PostgreSQL, through django-prometheus' wrapper (its database metrics).
    assert settings.DATABASES["default"]["ENGINE"] == "django_prometheus.db.backends.postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:6379/")


def test_every_beat_job_names_a_registered_task():
    from django.conf import settings

    from smsadmin.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names <= set(app.tasks)
    assert {"positivity.write_daily_messages", "positivity.deliver_daily_messages"} <= names
