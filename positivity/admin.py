"""The daily messages in the admin: upcoming and past, how each was written, and the
edit, replace and approve that staff may do before one goes out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from delivery.selectors import batch_progress
from positivity import editing
from positivity.models import DailyMessage

APPROVE_PERMISSION = "positivity.approve_dailymessage"
RECORD_FIELDS = (
    "source",
    "model",
    "state",
    "delivery",
    "history",
    "created_at",
    "edited_at",
    "edited_by",
    "approved_at",
    "approved_by",
)


class DailyMessageForm(ModelForm):
    class Meta:
        model = DailyMessage
        fields = ("date", "text")
        widgets = {"text": forms.Textarea(attrs={"rows": 3, "cols": 80})}

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        problem = editing.text_problem(text)
        if problem:
            raise forms.ValidationError(problem)
        if self.instance.pk and self.instance.has_gone_out:
            raise forms.ValidationError("This message has gone out; it can no longer change.")
        return text


@admin.register(DailyMessage)
class DailyMessageAdmin(admin.ModelAdmin):
    form = DailyMessageForm
    list_display = ("date", "text", "source", "state")
    list_filter = ("source",)
    date_hierarchy = "date"
    search_fields = ("text",)
    list_select_related = ("batch",)
    actions = ("approve_messages", "write_messages_again")

    def get_fields(self, request: HttpRequest, obj: DailyMessage | None = None) -> Any:
        return ("date", "text") if obj is None else ("date", "text", *RECORD_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: DailyMessage | None = None) -> Any:
        if obj is None:
            return ()
        return ("date", "text", *RECORD_FIELDS) if obj.has_gone_out else ("date", *RECORD_FIELDS)

    def save_model(
        self, request: HttpRequest, obj: DailyMessage, form: ModelForm, change: bool
    ) -> None:
        if not change:
            created = editing.create_for_day(day=obj.date, text=obj.text, by=request.user)
            obj.pk = created.pk
            return
        if "text" in form.changed_data:
            try:
                editing.change_text(message_id=obj.pk, text=obj.text, by=request.user)
            except editing.AlreadySent as error:
                self.message_user(request, str(error), messages.ERROR)

    def has_delete_permission(self, request: HttpRequest, obj: DailyMessage | None = None) -> bool:
        # A day's message is its history: replace the text instead.
        return False

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    @admin.action(description="Approve selected messages for sending", permissions=["approve"])
    def approve_messages(self, request: HttpRequest, queryset: QuerySet[DailyMessage]) -> None:
        approved = editing.approve(
            message_ids=list(queryset.values_list("pk", flat=True)), by=request.user
        )
        self.message_user(request, f"{approved} message(s) approved.", messages.SUCCESS)

    @admin.action(
        description="Write selected messages again (AI, else fallback)", permissions=["change"]
    )
    def write_messages_again(self, request: HttpRequest, queryset: QuerySet[DailyMessage]) -> None:
        rewritten, refused = 0, []
        for message in queryset.order_by("date"):
            try:
                editing.write_again(message_id=message.pk, by=request.user)
                rewritten += 1
            except editing.AlreadySent:
                refused.append(str(message.date))
        if rewritten:
            self.message_user(request, f"{rewritten} message(s) written again.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Already gone out, left as they were: {', '.join(refused)}.",
                messages.WARNING,
            )

    @admin.display(description="state")
    def state(self, obj: DailyMessage) -> str:
        if obj.batch_id is not None:
            return "Going out" if obj.date >= timezone.localdate() else "Sent"
        if not obj.may_be_sent:
            return "Awaiting approval"
        if obj.date < timezone.localdate() - timedelta(days=1):
            return "Not sent"
        return "Approved, waiting for send time" if obj.is_approved else "Waiting for send time"

    @admin.display(description="delivery")
    def delivery(self, obj: DailyMessage) -> str:
        if obj.batch_id is None:
            return "Not sent to anyone yet."
        progress = batch_progress(obj.batch_id)
        counts = ", ".join(
            f"{count} {status}" for status, count in progress.counts.items() if count
        )
        return f"{progress.total} subscribers: {counts or 'none yet'}."

    @admin.display(description="how it was written")
    def history(self, obj: DailyMessage) -> str:
        if not obj.attempts:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    attempt.get("at", "")[:19].replace("T", " "),
                    attempt.get("source", ""),
                    attempt.get("text", ""),
                    attempt.get("error") or attempt.get("reason") or "accepted",
                )
                for attempt in obj.attempts
            ),
        )
        return format_html(
            "<table><thead><tr><th>when (UTC)</th><th>source</th><th>text</th>"
            "<th>outcome</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
