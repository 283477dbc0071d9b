from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

import delivery.api.admin  # noqa: F401 - registers the API key admin
from delivery.errors import describe_error
from delivery.inbound import (
    REPLY_MAX_LENGTH,
    ReplyRefused,
    mark_handled,
    opt_out_flagged_senders,
    reply_refusal,
    send_reply,
)
from delivery.models import Attempt, Batch, InboundMessage, Message
from members.admin import NOTHING, PhoneSearchMixin, admin_link, change_url, local_time
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


# --- The two-way inbox -------------------------------------------------------------------

CONVERSATION_LENGTH = 10


class InboundReplyForm(forms.ModelForm):
    """The inbox page's form carries only what staff do: reply, or mark the text handled.
    Everything else on the page is the record."""

    reply_text = forms.CharField(
        label="Reply",
        required=False,
        max_length=REPLY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Sent from the number they texted, through the normal sending queue. "
        "Sending marks this text handled.",
    )
    mark_as_handled = forms.BooleanField(label="Mark handled", required=False)

    class Meta:
        model = InboundMessage
        fields: tuple[str, ...] = ()

    def clean_reply_text(self) -> str:
        body = self.cleaned_data["reply_text"].strip()
        if body:
            refusal = reply_refusal(inbound=self.instance)
            if refusal:
                raise forms.ValidationError(refusal, code="reply_refused")
        return body


@admin.register(InboundMessage)
class InboundMessageAdmin(PhoneSearchMixin, admin.ModelAdmin):
    form = InboundReplyForm
    phone_search_field = "from_phone"
    list_display = (
        "received_at",
        "from_phone",
        "member_link",
        "short_body",
        "action",
        "keyword",
        "is_flagged",
        "is_handled",
    )
    list_display_links = ("received_at", "from_phone")
    list_filter = ("is_handled", "is_flagged", "action")
    list_select_related = ("member",)
    search_fields = ("body",)
    search_help_text = "A phone number in any format (exact), or words of the text."
    list_per_page = 100
    show_full_result_count = False
    actions = ("mark_selected_handled", "opt_out_selected")
    record_fieldsets = (
        (
            None,
            {
                "fields": (
                    "from_phone",
                    "member_link",
                    "texting_status",
                    "received_at",
                    "body",
                    "num_media",
                )
            },
        ),
        (
            "What happened",
            {
                "fields": (
                    "keyword",
                    "action",
                    "is_flagged",
                    "reply_link",
                    "is_handled",
                    "handled_at",
                    "handled_by",
                )
            },
        ),
        ("Conversation", {"fields": ("conversation",)}),
        ("As received from Twilio", {"fields": ("message_sid", "from_raw", "to")}),
    )
    staff_fieldsets = (("Answer", {"fields": ("reply_text", "mark_as_handled")}),)
    readonly_fields = tuple(name for _, options in record_fieldsets for name in options["fields"])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the inbound webhook only

    def has_opt_out_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("members.add_optout")

    def get_fieldsets(self, request: HttpRequest, obj: InboundMessage | None = None) -> Any:
        if obj is not None and self.has_change_permission(request, obj):
            return (*self.record_fieldsets[:1], *self.staff_fieldsets, *self.record_fieldsets[1:])
        return self.record_fieldsets

    def save_model(
        self, request: HttpRequest, obj: InboundMessage, form: ModelForm, change: bool
    ) -> None:
        # Nothing of the record is edited here: only the staff actions are carried out.
        body = form.cleaned_data.get("reply_text", "")
        if body:
            try:
                reply = send_reply(inbound=obj, body=body, by=request.user)
            except ReplyRefused as refusal:
                self.message_user(request, str(refusal), messages.ERROR)
                return
            self.message_user(request, f"Reply to {reply.phone} queued.", messages.SUCCESS)
        elif form.cleaned_data.get("mark_as_handled"):
            mark_handled(inbound_ids=[obj.pk], by=request.user)

    @admin.action(description="Mark handled", permissions=["change"])
    def mark_selected_handled(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = mark_handled(inbound_ids=queryset.values_list("pk", flat=True), by=request.user)
        self.message_user(request, f"Marked {count} text(s) handled.", messages.SUCCESS)

    @admin.action(description="Opt out these numbers (flagged texts)", permissions=["opt_out"])
    def opt_out_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = list(queryset.values_list("pk", "is_flagged"))
        flagged = [pk for pk, is_flagged in selected if is_flagged]
        count = opt_out_flagged_senders(inbound_ids=flagged, by=request.user)
        self.message_user(request, f"Opted out {count} number(s).", messages.SUCCESS)
        if len(flagged) < len(selected):
            self.message_user(
                request,
                f"Left {len(selected) - len(flagged)} text(s) alone: only flagged texts "
                "opt their sender out here.",
                messages.WARNING,
            )

    @admin.display(description="text")
    def short_body(self, inbound: InboundMessage) -> str:
        return Truncator(inbound.body).chars(80) or NOTHING

    @admin.display(description="member", ordering="member__last_name")
    def member_link(self, inbound: InboundMessage) -> str:
        if inbound.member is None:
            return NOTHING
        return admin_link(change_url(inbound.member), inbound.member)

    @admin.display(description="our last reply")
    def reply_link(self, inbound: InboundMessage) -> str:
        if inbound.reply is None:
            return NOTHING
        return format_html(
            "{} ({})",
            admin_link(change_url(inbound.reply), inbound.reply.body),
            inbound.reply.get_status_display(),
        )

    @admin.display(description="may we text them?")
    def texting_status(self, inbound: InboundMessage) -> str:
        return reply_refusal(inbound=inbound) or "Yes."

    @admin.display(description="last texts both ways")
    def conversation(self, inbound: InboundMessage) -> str:
        if not inbound.from_phone:
            return NOTHING
        received = InboundMessage.objects.filter(from_phone=inbound.from_phone).values_list(
            "received_at", "body"
        )[:CONVERSATION_LENGTH]
        sent = Message.objects.filter(phone=inbound.from_phone, kind=Batch.Kind.REPLY).values_list(
            "created_at", "body"
        )[:CONVERSATION_LENGTH]
        lines = sorted(
            [(moment, "They wrote", body) for moment, body in received]
            + [(moment, "We replied", body) for moment, body in sent],
            key=lambda line: line[0],
        )[-CONVERSATION_LENGTH:]
        return format_html_join(
            "",
            "<div>{} · {}: {}</div>",
            ((local_time(moment), who, body) for moment, who, body in lines),
        )
