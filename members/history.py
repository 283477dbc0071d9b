"""Audit history (django-simple-history): who changed what, and when, in the admin.

The models are registered here rather than in their own apps so that every historical
table lives in ``members`` (one app's migrations) and ``campaigns/models.py`` is left alone.
Rows are written on ``save()`` and ``delete()``; bulk imports use raw SQL and bulk
operations and write none. ``HistoryRequestMiddleware`` records the signed-in user.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse
from simple_history import register
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import HistoricalRecords

HISTORY_APP = "members"


class AuditRecords(HistoricalRecords):
    """Skips saves that write only excluded fields (``last_login``, ``last_used_at``):
    a login or an API call is not a change anyone needs to audit."""

    def post_save(self, instance: Any, created: bool, using: Any = None, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields and set(update_fields) <= set(self.excluded_fields):
            return
        super().post_save(instance, created, using=using, **kwargs)


class KeyPrefixField(models.CharField):
    """An API key's id is ``<prefix>.<hash of the secret>``: its history keeps the prefix
    only. Lookups by the full id are cut the same way, so ``key.history`` and the admin's
    History page still find the rows (prefixes are unique)."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value.split(".", 1)[0] if isinstance(value, str) else value


class ApiKeyRecords(AuditRecords):
    def copy_fields(self, model: type[models.Model]) -> dict[str, models.Field]:
        fields = super().copy_fields(model)
        fields["id"] = KeyPrefixField(max_length=150, db_index=True, editable=False)
        fields["id"].name = "id"
        return fields


class AuditHistoryAdmin(SimpleHistoryAdmin):
    """The History page lists each change with its author and the fields it changed.

    Viewing only: reverting a row from its history would skip the services that guard
    state changes (a sent campaign, a lifted suppression, a revoked key).
    """

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


def register_audit_history() -> None:
    from campaigns.models import Campaign
    from delivery.api.models import ApiKey
    from members.models import Member, OptOut, Suppression

    user_model = get_user_model()
    register(Campaign, app=HISTORY_APP, records_class=AuditRecords)
    register(Member, app=HISTORY_APP, records_class=AuditRecords)
    register(OptOut, app=HISTORY_APP, records_class=AuditRecords)
    register(Suppression, app=HISTORY_APP, records_class=AuditRecords)
    register(
        ApiKey,
        app=HISTORY_APP,
        records_class=ApiKeyRecords,
        excluded_fields=["hashed_key", "last_used_at"],
    )
    register(
        user_model,
        app=HISTORY_APP,
        records_class=AuditRecords,
        excluded_fields=["password", "last_login"],
        m2m_fields=["groups"],
    )
