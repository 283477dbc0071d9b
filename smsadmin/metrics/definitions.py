"""The product's own metrics. Names and labels are a contract: the alert rules and the
Grafana dashboard (``monitoring/``) select them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "smsadmin_messages",
    "Messages that reached a status, by status and batch kind.",
    ["status", "kind"],
)
PROVIDER_SEND_SECONDS = Histogram(
    "smsadmin_provider_send_seconds",
    "Time of one send request to the SMS provider.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MESSAGE_PROCESSING_SECONDS = Histogram(
    "smsadmin_message_processing_seconds",
    "Time from a worker's claim of a message to its acceptance by the provider.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
RATE_LIMIT_WAITS = Counter(
    "smsadmin_rate_limit_waits",
    "Times a send had to wait for its sender's rate limit.",
    ["sender"],
)
PROVIDER_ERRORS = Counter(
    "smsadmin_provider_errors",
    "Provider error codes, on sends and on failed status callbacks.",
    ["code"],
)
WEBHOOKS = Counter(
    "smsadmin_webhooks",
    "Provider webhooks received, by type (status, inbound) and result "
    "(ok, rejected: bad signature, invalid, error).",
    ["type", "result"],
)
OPT_OUTS = Counter("smsadmin_opt_outs", "Phones opted out, by source.", ["source"])
SUPPRESSIONS = Counter("smsadmin_suppressions", "Phones suppressed, by reason.", ["reason"])
