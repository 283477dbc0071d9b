"""Prometheus metrics: what the product counts (``definitions``, written through
``recording``), what it reads from the database when scraped (``collectors``), and the
``/metrics`` endpoint (``views``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process (gunicorn workers, Celery workers)
writes its counters to files there and ``/metrics`` adds them up; unset, one process
keeps them in memory (tests, a single ``runserver``).
"""
