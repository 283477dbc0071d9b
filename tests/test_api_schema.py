"""The schemathesis run: property-based requests generated from the live OpenAPI schema
(``/api/v1/schema/``) against the whole WSGI stack, with a key that has every scope.

No request may end in a 5xx, and every answer must be one the schema describes (status
code, content type, body). A few examples per operation keep it to seconds.
"""

from __future__ import annotations

import pytest
import redis
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from delivery.api.models import ApiKey

SCHEMA_PATH = "/api/v1/schema/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Loaded when the module is collected: fetching the schema needs no database.
schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, get_wsgi_application())


@pytest.fixture(autouse=True)
def requests_keep_the_test_connection():
    """Like Django's test client: a request must not close the database connection when
    it ends (``close_old_connections``), for it holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def authorization(db):
    key, plaintext = ApiKey.objects.create_key(
        name="Schemathesis", scopes=list(ApiKey.Scope.values), rate_limit_per_minute=100_000
    )
    yield {"Authorization": f"Api-Key {plaintext}"}
    store = redis.Redis.from_url(settings.REDIS_URL)
    for counter in store.scan_iter(f"smsadmin:api-rate:{key.prefix}:*"):
        store.delete(counter)


@schema.parametrize()
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_schemathesis_api_answers_as_its_schema_says(case, authorization):
    case.call_and_validate(headers=authorization, checks=CHECKS)
