from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from members.views import staff_profile

admin.site.site_header = "SMS Admin"
admin.site.site_title = "SMS Admin"
admin.site.index_title = "Text your community"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/profile/", staff_profile, name="staff-profile"),
    path("admin/", admin.site.urls),
    path("webhooks/", include("delivery.urls")),
    path("api/v1/", include("delivery.api.urls")),
]
