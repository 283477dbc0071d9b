#!/bin/sh
# SMS Admin image entrypoint: the first argument picks the role.
#   web      gunicorn (deploy/gunicorn.conf.py) on :8000
#   worker   Celery worker          (extra arguments go to celery)
#   beat     celery-beat, exactly one per deployment
#   migrate  manage.py migrate; with STATIC_PUBLISH_DIR set, then copies the image's
#            static files (STATIC_ROOT, collected at build) there: the volume nginx serves
#   manage   manage.py with the remaining arguments, e.g. `manage createsuperuser`
# Anything else is run as a command (e.g. `sh`, for debugging).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
    web)
        exec gunicorn -c deploy/gunicorn.conf.py smsadmin.wsgi "$@"
        ;;
    worker)
        exec celery -A smsadmin worker --loglevel="${LOG_LEVEL:-INFO}" "$@"
        ;;
    beat)
        # DatabaseScheduler (settings): the schedule lives in PostgreSQL, no schedule
        # file. No pid file either: a stale one on a volume names PID 1, which is alive
        # in every new container, and beat would refuse to start.
        exec celery -A smsadmin beat --loglevel="${LOG_LEVEL:-INFO}" "$@"
        ;;
    migrate)
        python manage.py migrate --no-input "$@"
        if [ -n "${STATIC_PUBLISH_DIR:-}" ]; then
            # Copied over what an older image published (no gap while nginx serves it);
            # files no longer used stay, harmless: their names are not referenced.
            cp -R "${STATIC_ROOT:-/app/static}"/. "$STATIC_PUBLISH_DIR"/
            echo "Static files published to $STATIC_PUBLISH_DIR"
        fi
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
