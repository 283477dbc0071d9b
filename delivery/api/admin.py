"""API keys in the admin: Admins create (the key is shown once), scope and revoke them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey as LibraryApiKey

from delivery.api.models import ApiKey
from members.history import AuditHistoryAdmin


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What the key may do. A key without scopes can do nothing.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "rate_limit_per_minute", "expiry_date", "revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(AuditHistoryAdmin, APIKeyModelAdmin):
    form = ApiKeyForm
    list_display = (
        "prefix",
        "name",
        "scope_list",
        "rate_limit_per_minute",
        "created",
        "last_used_at",
        "expiry_date",
        "revoked",
    )
    list_filter = ("revoked", "created")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        record = ("prefix", "created", "last_used_at", "created_by")
        if obj is not None and obj.revoked:
            return (*record, "name", "scopes", "rate_limit_per_minute", "revoked", "expiry_date")
        return record if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ("name", "scopes", "rate_limit_per_minute", "expiry_date")
        if obj is None:
            return fields
        return ("prefix", *fields, "revoked", "created", "last_used_at", "created_by")

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: Any = None, change: bool = False
    ) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoke instead: the key's name and last use stay as history.
        return False

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes) or "none"


# The library's own concrete key model is not ours to manage.
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)
