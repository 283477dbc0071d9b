"""Pages for staff beyond the model admin: their own profile."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from members.forms import PhoneField
from members.models import StaffProfile


class StaffProfileForm(forms.Form):
    phone = PhoneField(required=False, label="My phone for test messages")


@staff_member_required
def staff_profile(request: HttpRequest) -> HttpResponse:
    """Every staff member sets the phone that "Send a test to myself" texts."""
    profile, _ = StaffProfile.objects.get_or_create(user=request.user)
    form = StaffProfileForm(request.POST or None, initial={"phone": profile.phone})
    if request.method == "POST" and form.is_valid():
        normalized = form.cleaned_data["phone"]
        profile.phone = normalized.e164 if normalized else ""
        profile.save(update_fields=["phone"])
        messages.success(request, "Your profile was saved.")
        return redirect("staff-profile")
    context = {**admin.site.each_context(request), "title": "My profile", "form": form}
    return TemplateResponse(request, "admin/staff_profile.html", context)
