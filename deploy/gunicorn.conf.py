"""Gunicorn settings for SMS Admin behind the local nginx (``deploy/nginx/smsadmin.conf``).

Every value can be overridden from the environment (``/etc/smsadmin/smsadmin.env`` on a
single server, which systemd loads for ``smsadmin-web.service``)::

    gunicorn -c deploy/gunicorn.conf.py smsadmin.wsgi

| variable | default |
|---|---|
| ``GUNICORN_BIND`` | ``127.0.0.1:8000`` (only nginx talks to it) |
| ``GUNICORN_WORKERS`` | 2 x CPU cores |
| ``GUNICORN_THREADS`` | 2 (``gthread`` workers) |
| ``GUNICORN_TIMEOUT`` / ``GUNICORN_GRACEFUL_TIMEOUT`` | 60 / 30 seconds |
| ``GUNICORN_KEEPALIVE`` | 5 seconds (nginx keeps upstream connections open) |
| ``GUNICORN_MAX_REQUESTS`` / ``GUNICORN_MAX_REQUESTS_JITTER`` | 2000 / 200 |
| ``GUNICORN_FORWARDED_ALLOW_IPS`` | ``127.0.0.1,::1`` (the local nginx) |
| ``GUNICORN_ACCESS_LOG`` / ``GUNICORN_ERROR_LOG`` | ``-`` (stdout/stderr: the journal) |
| ``GUNICORN_LOG_LEVEL`` | ``info`` |
| ``GUNICORN_PRELOAD`` | off |
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = [
    address.strip()
    for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
workers = _int("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count())
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 2)

# A worker silent this long is killed and replaced; on SIGTERM (systemctl stop/restart)
# workers get graceful_timeout to finish their requests.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then (bounded memory growth); the jitter keeps them from all
# restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)

# Only the local nginx may set X-Forwarded-Proto (https) and X-Forwarded-For; gunicorn then
# gives Django the https scheme (secure cookies, CSRF) for proxied requests.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips

# Requests are buffered by nginx; these only bound what a misbehaving client could send
# straight to gunicorn.
limit_request_line = 8190
limit_request_fields = 100

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Client address (from nginx's X-Forwarded-For), request, status, bytes, duration (µs).
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(B)s %(D)sus "%(f)s" "%(a)s" pid=%(p)s'
)

# Off by default: each worker imports the app itself, so a reload (SIGHUP) picks up new
# code and nothing (database connections, metric files) is shared across the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "off").lower() in {"1", "on", "yes", "true"}
# Heartbeat files in memory, not on a possibly slow or read-only disk.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (
    "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
)
proc_name = "smsadmin-web"


def child_exit(server, worker):
    """With multiprocess Prometheus metrics, drop a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
