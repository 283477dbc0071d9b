"""SMS Admin settings: every value comes from the environment (see ``.env.example``).

``DJANGO_ENV`` picks the defaults: ``development`` (the default) runs on a SQLite file and
whatever broker answers on this machine; ``test`` is what pytest sets; ``production`` turns
unsafe or missing values into a start-up error instead of a quiet default.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}."
    )
DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
IS_STRICT = DJANGO_ENV == "production" or (not DEBUG and DJANGO_ENV != "test")

_DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if IS_STRICT else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _refuse_unsafe_production_settings() -> None:
    problems = []
    if (
        SECRET_KEY == _DEVELOPMENT_SECRET_KEY
        or SECRET_KEY.startswith("django-insecure-")
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
    ):
        problems.append(
            "SECRET_KEY is missing or weak: set at least 50 random characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is empty: list the host names the site is served on")
    if DEBUG:
        problems.append("DEBUG is on in production")
    if not env.str("DATABASE_URL", default=""):
        problems.append("DATABASE_URL is not set: production runs on PostgreSQL")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with unsafe production settings:\n- " + "\n- ".join(problems)
        )


if IS_STRICT:
    _refuse_unsafe_production_settings()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "members",
    "delivery",
    "campaigns",
    "positivity",
]

MIDDLEWARE = [
    # First and last: requests the webhook shortcut below serves are counted too.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Twilio's signed webhooks skip everything below (see the class).
    "smsadmin.middleware.WebhookShortcutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Audit history rows record the signed-in user who made the change.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the outcome of authentication (django-axes' requirement).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# --- Security -------------------------------------------------------------------------
# Production is https only. TLS ends at nginx or the load balancer, which says so in
# X-Forwarded-Proto; that header is trusted because nothing else reaches the app (gunicorn
# listens on 127.0.0.1 behind nginx, the ECS tasks accept the load balancer only).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=IS_STRICT)
# The load balancer's health check and Prometheus' scrape call the app over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health(/live)?$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if IS_STRICT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = IS_STRICT
CSRF_COOKIE_SECURE = IS_STRICT
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Staff sign in again after a working day, counted from signing in.
SESSION_COOKIE_AGE = int(env.float("STAFF_SESSION_HOURS", default=8) * 3600)

# Content-Security-Policy (django-csp): only this site's own scripts, styles and images.
# Placed after WebhookShortcutMiddleware, so the webhooks and the API (JSON, and the
# Swagger/Redoc pages under /api/v1/docs/ and /redoc/ that need inline scripts and Redoc's
# web fonts) go without it; every page the admin renders gets it.
MIDDLEWARE.insert(
    MIDDLEWARE.index("smsadmin.middleware.WebhookShortcutMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
CONTENT_SECURITY_POLICY = {
    # The import job page polls its progress with an inline script and style: it goes
    # without the policy until they move to a static file.
    "EXCLUDE_URL_PREFIXES": ["/admin/members/importjob/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Staff two-factor -----------------------------------------------------------------
# Optional TOTP codes (an authenticator app) for staff, enrolled on the "Two-factor" page;
# the admin login asks for a code from everyone who has one. On: Admins must enrol one
# (and sign in with it) before any other admin page opens; Social managers stay optional.
STAFF_2FA_REQUIRED_FOR_ADMINS = env.bool("STAFF_2FA_REQUIRED_FOR_ADMINS", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="SMS Admin")
# The TOTP secret is shown once, to its owner, when enrolling; never again in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1,
    "members.two_factor.AdminTwoFactorRequiredMiddleware",
)

ROOT_URLCONF = "smsadmin.urls"

# --- The JSON API (/api/v1/) ----------------------------------------------------------
# API keys only: no session or Basic authentication, JSON in and out.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["delivery.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["delivery.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["delivery.api.auth.KeyRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["delivery.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "delivery.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# The largest request body the API reads (a bulk of 10,000 contacts is about 2 MB).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=5 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "SMS Admin API",
    "DESCRIPTION": "Send texts and add contacts from other systems. Authenticate with "
    "`Authorization: Api-Key <key>`; an Admin creates keys in the admin.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
WSGI_APPLICATION = "smsadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Default: a SQLite file that web, worker and beat share. WAL lets readers and one
# writer work at once; the busy timeout makes a writer wait for the lock, not fail.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'smsadmin.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # A database that does not answer fails a request (and /health) in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
    # Django binds parameters in Python (client-side cursors), which never prepare;
    # smsadmin.prepared binds on the server and prepares its hot statements, which
    # psycopg allows only with a threshold (Django's default, None, turns them off).
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Login lockout (django-axes): after AXES_FAILURE_LIMIT failures for one user name from
# one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_IPWARE_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# --- Locale ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")  # the organisation's own time zone
USE_I18N = True
USE_TZ = True
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="US").upper()

# --- Files ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Admin uploads stay on disk while they are imported; Django keeps larger ones in a
# temporary file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Member import --------------------------------------------------------------------
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=100 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1_000_000)
# A job whose worker gave no sign of life for this long (it died, or its task message was
# lost) is queued again by beat; a live import touches its job every 30 s.
IMPORT_STALE_SECONDS = env.int("IMPORT_STALE_SECONDS", default=300)


# --- Sending texts --------------------------------------------------------------------
# Twilio credentials; without them the simulator backend stands in (the local demo).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# Only for pointing the real SDK at the project's fake Twilio (tests, benchmarks, demo).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
SMS_BACKEND = env.str(
    "SMS_BACKEND", default="twilio" if TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN else "simulator"
)
if SMS_BACKEND not in {"twilio", "simulator"}:
    raise ImproperlyConfigured(f"SMS_BACKEND must be twilio or simulator, not {SMS_BACKEND!r}.")
if IS_STRICT and SMS_BACKEND == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN):
    raise ImproperlyConfigured("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
# Senders staff may pick: Twilio phone numbers (E.164) or Messaging Service SIDs (MG...).
SMS_SENDERS = env.list("SMS_SENDERS", default=["+15005550006"])
SMS_DEFAULT_SENDER = env.str("SMS_DEFAULT_SENDER", default=SMS_SENDERS[0])
if SMS_DEFAULT_SENDER not in SMS_SENDERS:
    raise ImproperlyConfigured("SMS_DEFAULT_SENDER must be one of SMS_SENDERS.")
# Segments per second each sender may send (Twilio limits segments, not messages): a US
# long code allows 1, toll-free 3, a short code 100; ask Twilio for yours.
SMS_RATE_LIMIT_PER_SECOND = env.float("SMS_RATE_LIMIT_PER_SECOND", default=10)
# Per-sender overrides, e.g. SMS_SENDER_RATE_LIMITS=+15551234567=1,MG0123...=100
SMS_SENDER_RATE_LIMITS = {
    sender: float(rate) for sender, rate in env.dict("SMS_SENDER_RATE_LIMITS", default={}).items()
}
# Price of one segment, for the cost estimate shown before sending.
SMS_PRICE_PER_SEGMENT = env.float("SMS_PRICE_PER_SEGMENT", default=0.0083)
SMS_PRICE_CURRENCY = env.str("SMS_PRICE_CURRENCY", default="USD")
# The public https address of this site: Twilio calls it back and signs with it.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Seconds before a call to the provider is given up (then reconciled, never blindly resent).
SMS_PROVIDER_TIMEOUT = env.float("SMS_PROVIDER_TIMEOUT", default=10)
# Requests in flight per worker process, and messages a worker claims at a time.
SMS_SEND_CONCURRENCY = env.int("SMS_SEND_CONCURRENCY", default=64)
SMS_SEND_CHUNK_SIZE = env.int("SMS_SEND_CHUNK_SIZE", default=200)
# Task chains sending one batch at once: match the worker slots (processes) you run.
SMS_SEND_TASK_CHAINS = env.int("SMS_SEND_TASK_CHAINS", default=2)
# A message left in "sending" this long is taken for a dead worker's: it is reconciled
# with the provider. Longer than a live worker holds one (queue, rate-limit wait, retries).
SMS_SENDING_LEASE_SECONDS = env.int("SMS_SENDING_LEASE_SECONDS", default=300)
# A batch with due messages that no worker claimed from for this long is dispatched again.
SMS_IDLE_BATCH_SECONDS = env.int("SMS_IDLE_BATCH_SECONDS", default=60)
# Quiet hours: campaign texts go out only inside this daily window of each recipient's
# local time (a campaign may override it); texts due outside it wait for the opening.
QUIET_HOURS_WINDOW = env.str("QUIET_HOURS_WINDOW", default="09:00-20:00")
# Attempts before a message with transient errors is failed for good.
SMS_MAX_ATTEMPTS = env.int("SMS_MAX_ATTEMPTS", default=6)


# --- Campaign approval ----------------------------------------------------------------
# On: a campaign is sent or scheduled only once an Admin approved it (Social managers
# submit it; an Admin approves it or sends it back). On by default in production.
CAMPAIGN_APPROVAL_REQUIRED = env.bool("CAMPAIGN_APPROVAL_REQUIRED", default=IS_STRICT)


# --- Inbound texts and compliance -----------------------------------------------------
# Who we are, in the answers to STOP, START and HELP. Carriers expect the help text to
# name the sender and a way to reach it (an email, a phone number or a web address).
ORGANIZATION_NAME = env.str("ORGANIZATION_NAME", default="Our community")
ORGANIZATION_CONTACT = env.str("ORGANIZATION_CONTACT", default="")
SMS_HELP_TEXT = env.str(
    "SMS_HELP_TEXT",
    default=f"{ORGANIZATION_NAME}: community texts. Msg frequency varies. Msg & data rates "
    "may apply. Reply STOP to opt out."
    + (f" Help: {ORGANIZATION_CONTACT}" if ORGANIZATION_CONTACT else ""),
)
# On when Twilio's Advanced Opt-Out answers STOP/START/HELP for our senders: we then send
# no answer of our own (a second one would fail with error 21610), only record them.
TWILIO_ADVANCED_OPT_OUT = env.bool("TWILIO_ADVANCED_OPT_OUT", default=False)
# Texts that ask to stop in words ("please stop texting me") are flagged for staff; on,
# they opt the number out at once, as a keyword would.
INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = env.bool(
    "INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS", default=False
)


# --- The daily positive message -------------------------------------------------------
# Subscribers get one text a day at this local time (each may choose another).
DAILY_MESSAGE_SEND_TIME = env.str("DAILY_MESSAGE_SEND_TIME", default="08:00")
# A subscriber whose time passed more than this many hours ago (the service was down)
# gets no message that day rather than one at night.
DAILY_MESSAGE_LATEST_DELAY_HOURS = env.float("DAILY_MESSAGE_LATEST_DELAY_HOURS", default=6)
# Texting one of these words subscribes a number to the daily message.
DAILY_MESSAGE_JOIN_KEYWORDS = [
    word.strip().upper()
    for word in env.list("DAILY_MESSAGE_JOIN_KEYWORDS", default=["JOIN", "DAILY"])
]
DAILY_MESSAGE_SENDER = env.str("DAILY_MESSAGE_SENDER", default=SMS_DEFAULT_SENDER)
DAILY_MESSAGE_CONFIRMATION = env.str(
    "DAILY_MESSAGE_CONFIRMATION",
    default=f"{ORGANIZATION_NAME}: you're subscribed to our daily positive message, 1 msg/day. "
    "Msg & data rates may apply. Reply HELP for help, STOP to cancel.",
)
# Segments a daily message may use (1 or 2), and whether it may leave GSM-7 (emoji...).
DAILY_MESSAGE_MAX_SEGMENTS = env.int("DAILY_MESSAGE_MAX_SEGMENTS", default=1)
DAILY_MESSAGE_ALLOW_UNICODE = env.bool("DAILY_MESSAGE_ALLOW_UNICODE", default=False)
# A new message must not resemble any of the messages this many days around it.
DAILY_MESSAGE_REPEAT_WINDOW_DAYS = env.int("DAILY_MESSAGE_REPEAT_WINDOW_DAYS", default=90)
# Texts asked of the AI before the fallback library is used.
DAILY_MESSAGE_MAX_ATTEMPTS = env.int("DAILY_MESSAGE_MAX_ATTEMPTS", default=3)
# On: staff approve each day's message in the admin before it is sent.
DAILY_MESSAGE_REQUIRE_APPROVAL = env.bool("DAILY_MESSAGE_REQUIRE_APPROVAL", default=False)
if DAILY_MESSAGE_MAX_SEGMENTS not in (1, 2) or DAILY_MESSAGE_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "DAILY_MESSAGE_MAX_SEGMENTS must be 1 or 2 and DAILY_MESSAGE_MAX_ATTEMPTS 1 or more."
    )
# OpenAI writes the message; without a key every day comes from the fallback library.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None  # None: api.openai.com
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4.1-mini")
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=15)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)


# --- Delivery failure rules -----------------------------------------------------------
# A number that fails for a transient reason (unreachable, unknown error) is suppressed
# once its last this-many failed messages fall within the window with no delivery since.
# Invalid numbers and landlines are suppressed at once, blocked ones after 2 failures.
SUPPRESS_AFTER_CONSECUTIVE_FAILURES = env.int("SUPPRESS_AFTER_CONSECUTIVE_FAILURES", default=3)
SUPPRESS_FAILURE_WINDOW_DAYS = env.int("SUPPRESS_FAILURE_WINDOW_DAYS", default=30)
# A batch pauses itself when failures on our side (content filtered, sender not
# registered, account) reach this many AND this share of its finished messages.
AUTO_PAUSE_SENDER_ERRORS_MIN = env.int("AUTO_PAUSE_SENDER_ERRORS_MIN", default=10)
AUTO_PAUSE_SENDER_ERROR_RATE = env.float("AUTO_PAUSE_SENDER_ERROR_RATE", default=0.05)
if SUPPRESS_AFTER_CONSECUTIVE_FAILURES < 1 or SUPPRESS_FAILURE_WINDOW_DAYS < 1:
    raise ImproperlyConfigured(
        "SUPPRESS_AFTER_CONSECUTIVE_FAILURES and SUPPRESS_FAILURE_WINDOW_DAYS must be 1 or more."
    )
if AUTO_PAUSE_SENDER_ERRORS_MIN < 1 or not 0 <= AUTO_PAUSE_SENDER_ERROR_RATE <= 1:
    raise ImproperlyConfigured(
        "AUTO_PAUSE_SENDER_ERRORS_MIN must be 1 or more, and AUTO_PAUSE_SENDER_ERROR_RATE "
        "a share between 0 and 1 (0.05 is 5%)."
    )


# --- Data retention -------------------------------------------------------------------
# Days kept before ``manage.py cleanup`` removes them: finished outbound messages (and
# their attempts), inbound texts, and member imports with their uploaded files. Messages
# and inbound texts are archived first (see ``delivery.archive``) and deleted only once
# the archive is read back and checked. RETENTION_DAYS is the default of both.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=400)
MESSAGE_RETENTION_DAYS = env.int("MESSAGE_RETENTION_DAYS", default=RETENTION_DAYS)
INBOUND_RETENTION_DAYS = env.int("INBOUND_RETENTION_DAYS", default=RETENTION_DAYS)
IMPORT_RETENTION_DAYS = env.int("IMPORT_RETENTION_DAYS", default=30)
for _name, _days in {
    "RETENTION_DAYS": RETENTION_DAYS,
    "MESSAGE_RETENTION_DAYS": MESSAGE_RETENTION_DAYS,
    "INBOUND_RETENTION_DAYS": INBOUND_RETENTION_DAYS,
    "IMPORT_RETENTION_DAYS": IMPORT_RETENTION_DAYS,
}.items():
    if _days < 1:
        raise ImproperlyConfigured(
            f"{_name} must be 1 or more (days to keep data before manage.py cleanup "
            f"removes it), not {_days}."
        )
# Where archived rows go: an S3-compatible bucket when ARCHIVE_S3_BUCKET is set, else a
# local folder. Credentials: ARCHIVE_S3_ACCESS_KEY_ID/ARCHIVE_S3_SECRET_ACCESS_KEY, else
# boto3's usual chain (AWS_ACCESS_KEY_ID..., an instance role).
ARCHIVE_ROOT = env.path("ARCHIVE_ROOT", default=VAR_DIR / "archive")
ARCHIVE_S3_BUCKET = env.str("ARCHIVE_S3_BUCKET", default="")
ARCHIVE_S3_PREFIX = env.str("ARCHIVE_S3_PREFIX", default="")
ARCHIVE_S3_ENDPOINT_URL = env.str("ARCHIVE_S3_ENDPOINT_URL", default="") or None
ARCHIVE_S3_REGION = env.str("ARCHIVE_S3_REGION", default="") or None
ARCHIVE_S3_ACCESS_KEY_ID = env.str("ARCHIVE_S3_ACCESS_KEY_ID", default="") or None
ARCHIVE_S3_SECRET_ACCESS_KEY = env.str("ARCHIVE_S3_SECRET_ACCESS_KEY", default="") or None
# Rows per archive object: bounds both the object's size and the memory a part needs.
ARCHIVE_PART_ROWS = env.int("ARCHIVE_PART_ROWS", default=50_000)
if ARCHIVE_PART_ROWS < 1:
    raise ImproperlyConfigured(f"ARCHIVE_PART_ROWS must be 1 or more, not {ARCHIVE_PART_ROWS}.")
if ARCHIVE_S3_BUCKET:
    _archive_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARCHIVE_S3_BUCKET,
            "location": ARCHIVE_S3_PREFIX,
            "endpoint_url": ARCHIVE_S3_ENDPOINT_URL,
            "region_name": ARCHIVE_S3_REGION,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
    # Unset: django-storages and boto3 look for credentials the usual way.
    if ARCHIVE_S3_ACCESS_KEY_ID:
        _archive_storage["OPTIONS"]["access_key"] = ARCHIVE_S3_ACCESS_KEY_ID
    if ARCHIVE_S3_SECRET_ACCESS_KEY:
        _archive_storage["OPTIONS"]["secret_key"] = ARCHIVE_S3_SECRET_ACCESS_KEY
else:
    # allow_overwrite: a rerun after a crash rewrites a part in place, never beside it.
    _archive_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": ARCHIVE_ROOT, "allow_overwrite": True},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "archive": _archive_storage,
}


# --- Redis and Celery -----------------------------------------------------------------
def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


CELERY_FILESYSTEM_BROKER_DIR = VAR_DIR / "celery-broker"
_default_broker = "redis://127.0.0.1:6379/0"
# The embedded default: Redis on this machine when it answers, else a broker kept in
# files. Either way the database is the record of what must be sent, so a broker
# message lost here only delays work.
if (
    DJANGO_ENV == "development"
    and "CELERY_BROKER_URL" not in env
    and "REDIS_URL" not in env
    and not _redis_answers()
):
    _default_broker = "filesystem://"
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL if "REDIS_URL" in env else _default_broker
)
# Longer than any task may run (CELERY_TASK_TIME_LIMIT): a task whose worker died is
# redelivered after this, never while it may still be running.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT * 2,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("in", "processed", "control"):
        (CELERY_FILESYSTEM_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR / "in"),
            "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR / "in"),
            "processed_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "processed"),
            "store_processed": False,
            "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        }
    )
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="smsadmin")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The one place where periodic jobs are declared; later issues add to it.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "launch-due-campaigns": {"task": "campaigns.launch_due_campaigns", "schedule": 15.0},
    "finish-sent-campaigns": {"task": "campaigns.finish_sent_campaigns", "schedule": 15.0},
    "resume-stale-imports": {"task": "members.resume_stale_import_jobs", "schedule": 60.0},
    "delivery-sweep": {"task": "delivery.sweep", "schedule": 30.0},
    "simulated-statuses": {"task": "delivery.report_simulated_statuses", "schedule": 5.0},
    # Writes today's and tomorrow's daily message when missing (a repeat changes nothing):
    # hourly, so a beat that was down at midnight still writes them in good time.
    "write-daily-messages": {
        "task": "positivity.write_daily_messages",
        "schedule": crontab(minute=5),
    },
    "deliver-daily-messages": {"task": "positivity.deliver_daily_messages", "schedule": 120.0},
    "cleanup": {"task": "delivery.cleanup", "schedule": crontab(hour=3, minute=30)},
    # Beat's heartbeat for /health: publishing it is the tick (smsadmin/heartbeats.py).
    "heartbeat": {"task": "smsadmin.heartbeat", "schedule": 30.0},
    "publish-queue-depth": {"task": "smsadmin.publish_queue_depth", "schedule": 60.0},
}
# On AWS: the CloudWatch namespace and metric the workers autoscale on (terraform sets
# them); unset, nothing is published.
QUEUE_DEPTH_METRIC_NAMESPACE = env.str("QUEUE_DEPTH_METRIC_NAMESPACE", default="")
QUEUE_DEPTH_METRIC_NAME = env.str("QUEUE_DEPTH_METRIC_NAME", default="QueueDepth")

# --- Metrics --------------------------------------------------------------------------
# django-prometheus' database metrics (queries, errors, connections by vendor) come from
# its thin wrappers of Django's own backends.
_PROMETHEUS_BACKENDS = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASES["default"]["ENGINE"] = _PROMETHEUS_BACKENDS.get(
    DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
)
# GET /metrics (Prometheus): open to a bearer token (Authorization: Bearer METRICS_TOKEN)
# or, without a token, to these addresses (CIDR). A wrong token is a 401, others a 403.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1/32", "::1"])
METRICS_TRUSTED_PROXY_COUNT = AXES_IPWARE_PROXY_COUNT
# Web and worker processes on one host write their metrics to files in this folder and
# /metrics adds them up. Cleared when the processes start (the Procfile does it); empty
# (the tests' default): each process keeps its own, in memory. prometheus_client reads
# the environment variable, so it is set here, before the first metric exists.
PROMETHEUS_MULTIPROC_DIR = env.str(
    "PROMETHEUS_MULTIPROC_DIR",
    default="" if DJANGO_ENV == "test" else str(VAR_DIR / "prometheus-multiproc"),
)
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", PROMETHEUS_MULTIPROC_DIR)

# --- Health ---------------------------------------------------------------------------
# GET /health (readiness) fails when the freshest worker heartbeat, or beat's last tick,
# is older than these, or when a due message has waited longer than the last one.
HEALTH_WORKER_MAX_AGE_SECONDS = env.float("HEALTH_WORKER_MAX_AGE_SECONDS", default=90)
HEALTH_BEAT_MAX_AGE_SECONDS = env.float(
    "HEALTH_BEAT_MAX_AGE_SECONDS", default=2 * CELERY_BEAT_SCHEDULE["heartbeat"]["schedule"]
)
HEALTH_MAX_PENDING_AGE_SECONDS = env.float("HEALTH_MAX_PENDING_AGE_SECONDS", default=900)
# How often a worker refreshes its heartbeat (well inside HEALTH_WORKER_MAX_AGE_SECONDS).
HEALTH_HEARTBEAT_INTERVAL_SECONDS = env.float("HEALTH_HEARTBEAT_INTERVAL_SECONDS", default=15)
# Milliseconds each database query of /health may take before it counts as failed.
HEALTH_DATABASE_TIMEOUT_MS = env.int("HEALTH_DATABASE_TIMEOUT_MS", default=500)
# smsadmin is not a Django app: autodiscovery would not find its task module.
CELERY_IMPORTS = ("smsadmin.tasks",)

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The twilio SDK logs every request and its headers at INFO.
        "twilio": {"level": "WARNING"},
    },
}
