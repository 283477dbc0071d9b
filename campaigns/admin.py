"""Compose, preview, send and follow campaigns in the admin.

The change page carries the preview (while the campaign is editable), the progress of
its messages (once launched) and the buttons; each button posts to a view in
``campaigns.admin_views`` that calls one service.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import SimpleLazyObject

from campaigns import admin_views
from campaigns.forms import CampaignForm
from campaigns.models import Campaign
from campaigns.preview import build_preview
from delivery.selectors import batch_progress
from members.history import AuditHistoryAdmin

NOTHING = "—"
CHANGE_PERMISSION = admin_views.CHANGE_PERMISSION
APPROVE_PERMISSION = admin_views.APPROVE_PERMISSION


@admin.register(Campaign)
class CampaignAdmin(AuditHistoryAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "audience_description",
        "state",
        "send_at",
        "recipients",
        "progress",
        "created_by",
    )
    list_filter = ("state", "audience")
    list_select_related = ("event", "created_by")
    search_fields = ("name",)
    radio_fields = {"audience": admin.HORIZONTAL}
    compose_fieldsets = (
        (None, {"fields": ("name", "audience", "event", "sender", "body")}),
        ("When", {"fields": ("send_at", "respect_quiet_hours")}),
    )
    record_fields = (
        "state",
        "created_by",
        "created_at",
        "updated_at",
        "launched_at",
        "finished_at",
        "canceled_at",
        "failure_reason",
    )
    approval_fields = (
        "approval_status",
        "submitted_by",
        "submitted_at",
        "reviewed_by",
        "reviewed_at",
        "review_comment",
    )
    counter_fields = (
        "recipients_count",
        "excluded_opted_out",
        "excluded_suppressed",
        "excluded_duplicates",
        "excluded_no_phone",
    )
    readonly_fields = record_fields + approval_fields + counter_fields

    class Media:
        js = ("campaigns/campaign_admin.js",)
        css = {"all": ("campaigns/campaign_admin.css",)}

    # --- Who may do what ------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        # Once launched a campaign is a record: its page is read-only, buttons aside.
        return super().has_change_permission(request, obj) and (obj is None or obj.can_edit)

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.state == Campaign.State.DRAFT
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk delete would not check each campaign's state.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- Pages ----------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None) -> Any:
        if obj is None:
            return self.compose_fieldsets
        fieldsets = [*self.compose_fieldsets, ("Record", {"fields": self.record_fields})]
        if settings.CAMPAIGN_APPROVAL_REQUIRED or (
            obj.approval_status != Campaign.ApprovalStatus.NOT_SUBMITTED
        ):
            fieldsets.append(("Approval", {"fields": self.approval_fields}))
        if obj.launched_at is not None:
            fieldsets.append(
                (
                    "Recipients at launch",
                    {
                        "fields": self.counter_fields,
                        "description": "Members of the pool who got a message, and those "
                        "left out (each counted once, under the first reason that applies).",
                    },
                )
            )
        return fieldsets

    def get_list_display(self, request: HttpRequest) -> Any:
        if not settings.CAMPAIGN_APPROVAL_REQUIRED:
            return self.list_display
        position = self.list_display.index("state") + 1
        return (*self.list_display[:position], "approval", *self.list_display[position:])

    def get_list_filter(self, request: HttpRequest) -> Any:
        if not settings.CAMPAIGN_APPROVAL_REQUIRED:
            return self.list_filter
        return (*self.list_filter, "approval_status")

    def save_model(
        self, request: HttpRequest, obj: Campaign, form: ModelForm, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        was_scheduled = obj.state == Campaign.State.SCHEDULED
        super().save_model(request, obj, form, change)
        reviewed_fields_changed = set(form.changed_data) & set(Campaign.REVIEWED_FIELDS)
        if not (change and reviewed_fields_changed and obj.withdraw_approval()):
            return
        if settings.CAMPAIGN_APPROVAL_REQUIRED:
            unscheduled = (
                " It is a draft again: schedule it once approved."
                if was_scheduled and obj.state == Campaign.State.DRAFT
                else ""
            )
            self.message_user(
                request,
                "The body, audience or sender changed, so its approval was taken back: "
                f"submit it for approval again.{unscheduled}",
                messages.WARNING,
            )

    def get_urls(self) -> list[URLPattern]:
        def view(function: Any) -> Any:
            return self.admin_site.admin_view(
                lambda request, *args, **kwargs: function(self, request, *args, **kwargs)
            )

        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("segments/", view(admin_views.segments), name=f"{info}_segments"),
            path("<path:object_id>/progress/", view(admin_views.progress), name=f"{info}_progress"),
            *(
                path(
                    f"<path:object_id>/{action.slug}/",
                    view(admin_views.action_view(action)),
                    name=f"{info}_{action.url_name}",
                )
                for action in admin_views.ACTIONS
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        context = {"campaign_urls": self.urls_for(None), **(extra_context or {})}
        return super().add_view(request, form_url, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        campaign = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if campaign is not None:
            context.update(self.panel_context(request, campaign))
        return super().change_view(request, object_id, form_url, context)

    def panel_context(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        """What the preview, progress and button panels show."""
        progress = admin_views.progress_context(campaign)
        return {
            "campaign": campaign,
            "campaign_urls": self.urls_for(campaign),
            # Lazy: computed only when the page is drawn, not when a save redirects.
            "preview": SimpleLazyObject(lambda: build_preview(campaign))
            if campaign.can_edit
            else None,
            **progress,
            "may_act": request.user.has_perm(CHANGE_PERMISSION),
            "may_review": campaign.can_review
            and request.user.has_perms((CHANGE_PERMISSION, APPROVE_PERMISSION)),
            "approval_required": settings.CAMPAIGN_APPROVAL_REQUIRED,
            "may_retry": campaign.state in (Campaign.State.SENDING, Campaign.State.DONE)
            and progress["progress"] is not None
            and bool(progress["progress"].failures),
            "may_resume": campaign.state == Campaign.State.SENDING
            and campaign.batch is not None
            and campaign.batch.is_paused,
        }

    def urls_for(self, campaign: Campaign | None) -> dict[str, str]:
        info = f"admin:{self.opts.app_label}_{self.opts.model_name}"
        urls = {"segments": reverse(f"{info}_segments")}
        if campaign is not None:
            urls["progress"] = reverse(f"{info}_progress", args=[campaign.pk])
            for action in admin_views.ACTIONS:
                urls[action.url_name] = reverse(f"{info}_{action.url_name}", args=[campaign.pk])
        return urls

    # --- List columns ---------------------------------------------------------------------

    @admin.display(description="audience", ordering="audience")
    def audience_description(self, campaign: Campaign) -> str:
        if campaign.audience == Campaign.Audience.EVENT and campaign.event is not None:
            return f"Registrants of {campaign.event.name}"
        return campaign.get_audience_display()

    @admin.display(description="Approval", ordering="approval_status")
    def approval(self, campaign: Campaign) -> str:
        return campaign.get_approval_status_display()

    @admin.display(description="recipients", ordering="recipients_count")
    def recipients(self, campaign: Campaign) -> str:
        if campaign.launched_at is None:
            return NOTHING
        return f"{campaign.recipients_count:,}"

    @admin.display(description="progress")
    def progress(self, campaign: Campaign) -> str:
        if campaign.batch_id is None:
            return NOTHING
        if campaign.state == Campaign.State.DONE:
            # Nothing is left to send; skip counting a possibly huge batch per row.
            return "100%"
        return f"{batch_progress(campaign.batch_id).percent}%"
