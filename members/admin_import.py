"""The "Member imports" admin: upload a CSV, watch it being checked, preview, confirm.

The add view is an upload form; the change view is the job's page (progress while a
worker checks or imports the file, then the preview with every rejected row and a
"Confirm import" button, then the summary). Jobs are never edited by hand.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_slug
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from members.importing.jobs import confirm_import_job, sample_accepted_rows, start_import_job
from members.models import Event, ImportJob

Status = ImportJob.Status
RUNNING_STATUSES = {Status.UPLOADED, Status.VALIDATING, Status.QUEUED, Status.IMPORTING}
EVENTS_OFFERED = 200


def region_choices() -> list[tuple[str, str]]:
    return sorted(
        (region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
        for region in phonenumbers.SUPPORTED_REGIONS
    )


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="A phone (or mobile, phone_number, cell) column is required; first_name, "
        "last_name, email, daily (yes/no) and timezone are understood; every other column "
        "becomes a merge field. Comma, semicolon or tab separated.",
    )
    region = forms.ChoiceField(
        choices=region_choices,
        help_text="Numbers written without a +country code are read as numbers of this region.",
    )
    event = forms.ChoiceField(
        label="Register for an event",
        required=False,
        help_text="Leave empty to add the rows to the community pool.",
    )
    new_event_slug = forms.CharField(
        label="or a new event (slug)",
        required=False,
        max_length=100,
        validators=[validate_slug],
        help_text="Created when the import runs, e.g. summer-picnic-2025.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = Event.objects.order_by("-created_at").values_list("slug", "name")
        self.fields["event"].choices = [
            ("", "— no event: community pool —"),
            *((slug, f"{name} ({slug})") for slug, name in events[:EVENTS_OFFERED]),
        ]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:,.1f} MB; the largest accepted is "
                f"{settings.IMPORT_MAX_BYTES / 1024 / 1024:,.1f} MB. Split it into smaller files."
            )
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("event") and cleaned.get("new_event_slug"):
            raise forms.ValidationError("Pick an existing event or type a new slug, not both.")
        cleaned["event_slug"] = cleaned.get("event") or cleaned.get("new_event_slug") or ""
        return cleaned


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("original_name", "status", "rows_read", "outcome", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # jobs move forward through their own pages only

    @admin.display(description="outcome")
    def outcome(self, job: ImportJob) -> str:
        if job.status == Status.FAILED:
            return job.failure[:80]
        if not job.counts:
            return ""
        template = (
            "would create {}, update {}, reject {}"
            if job.status == Status.VALIDATED
            else "created {}, updated {}, rejected {}"
        )
        counts = job.counts
        return format_html(
            template,
            counts.get("created", 0),
            counts.get("updated", 0),
            counts.get("rejected", 0),
        )

    def get_urls(self) -> list[Any]:
        info = (self.opts.app_label, self.opts.model_name)
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/status/",
                wrap(self.status_view),
                name="{}_{}_status".format(*info),
            ),
            path(
                "<path:object_id>/confirm/",
                wrap(require_POST(self.confirm_view)),
                name="{}_{}_confirm".format(*info),
            ),
            path(
                "<path:object_id>/rejected-rows/",
                wrap(self.rejected_rows_view),
                name="{}_{}_rejected_rows".format(*info),
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ImportUploadForm(request.POST, request.FILES)
            if form.is_valid():
                job = start_import_job(
                    upload=form.cleaned_data["file"],
                    region=form.cleaned_data["region"],
                    event_slug=form.cleaned_data["event_slug"],
                    created_by=request.user,
                )
                return redirect(self._url("change", job))
        else:
            form = ImportUploadForm(initial={"region": settings.DEFAULT_PHONE_REGION})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import members from CSV",
            "form": form,
            "max_megabytes": settings.IMPORT_MAX_BYTES // (1024 * 1024),
            "max_rows": settings.IMPORT_MAX_ROWS,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/members/importjob/upload.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        is_running = job.status in RUNNING_STATUSES
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Member import: {job.original_name}",
            "job": job,
            "counts": job.counts,
            "is_running": is_running,
            "can_confirm": job.status == Status.VALIDATED and self.has_add_permission(request),
            "sample_rows": sample_accepted_rows(job=job) if job.status == Status.VALIDATED else [],
            "status_url": self._url("status", job),
            "confirm_url": self._url("confirm", job),
            "rejected_rows_url": self._url("rejected_rows", job) if job.error_report else "",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/members/importjob/job.html", context)

    def status_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        job = self._job_or_404(request, object_id)
        return JsonResponse(
            {
                "status": job.status,
                "status_label": job.get_status_display(),
                "progress_percent": job.progress_percent,
                "rows_read": job.rows_read,
                "is_running": job.status in RUNNING_STATUSES,
            }
        )

    def confirm_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        if confirm_import_job(job=job):
            messages.success(request, "The import has started; this page follows it.")
        else:
            messages.error(
                request,
                f"Only a checked file that is ready to import can be confirmed; this one is "
                f"“{job.get_status_display()}”.",
            )
        return redirect(self._url("change", job))

    def rejected_rows_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        job = self._job_or_404(request, object_id)
        if not job.error_report:
            raise Http404("This import has no rejected rows.")
        stem = job.original_name.rsplit(".", 1)[0] or "import"
        return FileResponse(
            job.error_report.open("rb"),
            as_attachment=True,
            filename=f"rejected-rows-{stem}.csv",
            content_type="text/csv",
        )

    def _job_or_404(self, request: HttpRequest, object_id: str) -> ImportJob:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404("No such import.")
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def _url(self, view: str, job: ImportJob) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}", args=[job.pk])
