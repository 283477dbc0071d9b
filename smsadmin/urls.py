from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from members.views import staff_profile
from smsadmin import health
from smsadmin.dashboard_context import dashboard_context
from smsadmin.metrics.views import metrics

admin.site.site_header = "SMS Admin"
admin.site.site_title = "SMS Admin"
admin.site.index_title = "Text your community"

_plain_index = admin.site.index


def _index_with_dashboard(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    # The index's charts: set here, before ``admin.site.urls`` takes ``site.index``.
    return _plain_index(request, {**dashboard_context(request), **(extra_context or {})})


admin.site.index = _index_with_dashboard

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/profile/", staff_profile, name="staff-profile"),
    path("admin/", admin.site.urls),
    path("webhooks/", include("delivery.urls")),
    path("api/v1/", include("delivery.api.urls")),
    path("health", health.ready, name="health"),
    path("health/live", health.live, name="health-live"),
    path("metrics", metrics, name="metrics"),
]
