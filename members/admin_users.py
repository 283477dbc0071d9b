"""Staff accounts in the admin: their audit history, the two-factor login and enrolment."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import URLPattern, path
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from members.history import AuditHistoryAdmin
from members.two_factor import StaffLoginForm, enrol_view

admin.site.login_form = StaffLoginForm


class StaffUserAdmin(AuditHistoryAdmin, UserAdmin):
    pass


class StaffTOTPDeviceAdmin(TOTPDeviceAdmin):
    """Admins see and remove staff devices (a lost phone); every staff member enrols their
    own at ``enrol/``."""

    def get_urls(self) -> list[URLPattern]:
        enrol = path(
            "enrol/", self.admin_site.admin_view(enrol_view), name="otp_totp_totpdevice_enrol"
        )
        return [enrol, *super().get_urls()]


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffUserAdmin)
admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, StaffTOTPDeviceAdmin)
