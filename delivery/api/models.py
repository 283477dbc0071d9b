"""API keys (hashed, scoped, revocable) and the stored answers of idempotent requests.

Imported by ``delivery.models`` so that Django finds them in the ``delivery`` app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey


class ApiKey(AbstractAPIKey):
    """A key another system sends as ``Authorization: Api-Key <prefix>.<secret>``.

    Only a hash is stored (djangorestframework-api-key); the key is shown once, when an
    Admin creates it. ``scopes`` say what it may do; revoking it is final.
    """

    class Scope(models.TextChoices):
        SEND = "send", "Send messages"
        CONTACTS = "contacts", "Add and update contacts"
        READ = "read", "Read messages and their status"

    scopes = models.JSONField(
        default=list, blank=True, help_text="What the key may do: send, contacts, read."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600, help_text="Requests a minute; beyond it the API answers 429."
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotentRequest(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``: a retry with the
    same key gets this answer again and changes nothing."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "key"], name="one_answer_per_idempotency_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status})"
