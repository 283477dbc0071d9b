from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from delivery.errors import describe_error
from delivery.models import Attempt, Batch, Message
from members.phones import InvalidPhoneNumber, normalize_phone
from smsadmin.pagination import LargeTablePaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Messages are written by the pipeline only; staff read them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("started_at", "outcome", "http_status", "error_code", "error_message", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "phone",
        "status",
        "kind",
        "batch",
        "segments",
        "error",
        "created_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("phone",)
    search_help_text = "A phone number in any common format."
    list_select_related = ("batch",)
    show_full_result_count = False
    paginator = LargeTablePaginator
    list_per_page = 50
    inlines = [AttemptInline]
    fields = (
        "phone",
        "sender",
        "batch",
        "kind",
        "body",
        "encoding",
        "segments",
        "status",
        "provider_sid",
        "error_code",
        "error_message",
        "attempts",
        "send_after",
        "created_at",
        "claimed_at",
        "accepted_at",
        "sent_at",
        "delivered_at",
        "failed_at",
        "canceled_at",
    )
    readonly_fields = fields

    @admin.display(description="error")
    def error(self, message: Message) -> str:
        if message.error_code:
            return f"{message.error_code}: {describe_error(message.error_code)}"
        return message.error_message

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        # Match the indexed column exactly: a LIKE over millions of rows is never fast.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            phone = normalize_phone(term, region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber:
            return queryset.none(), False
        return queryset.filter(phone=phone), False


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ("label", "kind", "sender", "is_paused", "created_at", "last_claimed_at")
    list_filter = ("kind", "is_paused")
    search_fields = ("label",)
    readonly_fields = (
        "label",
        "kind",
        "sender",
        "is_paused",
        "pause_reason",
        "created_at",
        "last_claimed_at",
    )
