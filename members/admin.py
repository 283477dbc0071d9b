"""The admin is the main UI: members, events and registrations, opt-outs and suppressions.

Lists stay fast with 100k+ members: contact flags come from one annotated query, related
rows are joined, phone searches hit the unique index, and no list counts the whole table
twice (``show_full_result_count = False``).
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from members.admin_import import ImportJobAdmin  # noqa: F401
from members.admin_users import StaffUserAdmin  # noqa: F401
from members.forms import MemberAdminForm, OptOutAddForm, SuppressionAddForm
from members.history import AuditHistoryAdmin
from members.models import (
    ContactBlock,
    Event,
    EventRegistration,
    Member,
    OptOut,
    Suppression,
)
from members.phones import InvalidPhoneNumber, normalize_phone

# Digits and the punctuation people type in phone numbers, nothing else: a name is never
# mistaken for a number (phonenumbers would read "1-800-FLOWERS" as digits).
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]+")
_MINIMUM_PHONE_DIGITS = 7
EVENTS_SHOWN_ON_MEMBER = 20
NOTHING = "—"


def phone_in_search_term(search_term: str) -> str | None:
    """The E.164 number a search term spells, or None when it is not a whole phone number."""
    term = search_term.strip()
    digit_count = sum(character.isdigit() for character in term)
    if not _PHONE_LIKE.fullmatch(term) or digit_count < _MINIMUM_PHONE_DIGITS:
        return None
    region = settings.DEFAULT_PHONE_REGION
    try:
        return normalize_phone(term, region=region)
    except InvalidPhoneNumber as error:
        if error.code != "unsupported_type":
            return None
    # A landline cannot be texted, so the normaliser refuses it, but it may well be
    # suppressed (reason: landline) and staff must still find it.
    try:
        number = phonenumbers.parse(term, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def admin_link(url: str, text: object) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text)


def changelist_url(model: type, **filters: object) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def change_url(instance: Any) -> str:
    opts = instance._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])


def local_time(moment: Any) -> str:
    return localize(timezone.localtime(moment)) if moment else NOTHING


class PhoneSearchMixin:
    """A search term that is a phone number in any format matches the stored E.164 exactly.

    Anything else falls through to the usual word-by-word ``search_fields`` search.
    """

    phone_search_field = "phone"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        phone = phone_in_search_term(search_term)
        if phone is not None:
            return queryset.filter(**{self.phone_search_field: phone}), False
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]


# --- Members ----------------------------------------------------------------------------


class EventFilter(admin.SimpleListFilter):
    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Event.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        # One registration per (event, member): the join cannot repeat a member.
        return queryset.filter(registrations__event_id=self.value())


class OptedOutFilter(admin.SimpleListFilter):
    title = "opted out"
    parameter_name = "opted_out"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Opted out"), ("no", "Not opted out")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.opted_out()
        if self.value() == "no":
            # MemberAdmin's queryset carries with_contact_flags(): filter on that flag.
            return queryset.filter(is_opted_out=False)
        return queryset


class SuppressedFilter(admin.SimpleListFilter):
    title = "suppressed"
    parameter_name = "suppressed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Suppressed"), ("no", "Not suppressed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.suppressed()
        if self.value() == "no":
            return queryset.filter(is_suppressed=False)
        return queryset


@admin.register(Member)
class MemberAdmin(PhoneSearchMixin, AuditHistoryAdmin):
    form = MemberAdminForm
    list_display = (
        "name",
        "phone",
        "is_community",
        "is_daily_subscriber",
        "opted_out",
        "suppressed",
        "created_at",
    )
    list_display_links = ("name", "phone")
    list_filter = (
        "is_community",
        EventFilter,
        OptedOutFilter,
        SuppressedFilter,
        "is_daily_subscriber",
    )
    search_fields = ("first_name", "last_name", "email", "phone")
    search_help_text = "A name, an email, or a phone number in any format."
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = (
        "contact_status",
        "number_timezones_display",
        "merge_fields_table",
        "events_registered",
        "daily_confirmed_at",
        "created_at",
        "updated_at",
    )
    add_fieldsets = (
        (None, {"fields": ("phone", "first_name", "last_name", "email")}),
        (
            "Texting",
            {"fields": ("is_community", "is_daily_subscriber", "daily_send_time", "timezone")},
        ),
        ("Merge fields", {"fields": ("fields",)}),
    )
    fieldsets = (
        (None, {"fields": ("phone", "first_name", "last_name", "email")}),
        (
            "Texting",
            {
                "fields": (
                    "contact_status",
                    "is_community",
                    "is_daily_subscriber",
                    "daily_send_time",
                    "daily_confirmed_at",
                    "timezone",
                    "number_timezones_display",
                )
            },
        ),
        (
            "Merge fields",
            {
                "fields": ("merge_fields_table", "fields"),
                "description": "Values campaign templates can use, e.g. {neighborhood}. "
                'Edit them as JSON: {"neighborhood": "Mission", "favorite_color": "teal"}.',
            },
        ),
        ("Events", {"fields": ("events_registered",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).with_contact_flags()

    def get_fieldsets(self, request: HttpRequest, obj: Member | None = None) -> Any:
        return self.fieldsets if obj is not None else self.add_fieldsets

    def save_model(self, request: HttpRequest, obj: Member, form: ModelForm, change: bool) -> None:
        if change:
            obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

    @admin.display(description="name", ordering="last_name")
    def name(self, member: Member) -> str:
        return f"{member.first_name} {member.last_name}".strip() or NOTHING

    @admin.display(description="opted out", boolean=True)
    def opted_out(self, member: Member) -> bool:
        return member.is_opted_out  # type: ignore[attr-defined]

    @admin.display(description="suppressed", boolean=True)
    def suppressed(self, member: Member) -> bool:
        return member.is_suppressed  # type: ignore[attr-defined]

    @admin.display(description="texting status")
    def contact_status(self, member: Member) -> str:
        opt_out = OptOut.objects.active().filter(phone=member.phone).first()
        suppression = Suppression.objects.active().filter(phone=member.phone).first()
        lines = []
        if opt_out is None and suppression is None:
            lines.append(format_html("{}", "Yes: neither opted out nor suppressed."))
        if opt_out is not None:
            lines.append(
                format_html(
                    "No: opted out since {} ({}). {}",
                    local_time(opt_out.created_at),
                    opt_out.get_source_display(),
                    admin_link(change_url(opt_out), "See the opt-out"),
                )
            )
        if suppression is not None:
            lines.append(
                format_html(
                    "No: suppressed since {} ({}). {}",
                    local_time(suppression.created_at),
                    suppression.get_reason_display(),
                    admin_link(change_url(suppression), "See the suppression"),
                )
            )
        if opt_out is None:
            add_opt_out = reverse("admin:members_optout_add")
            lines.append(
                admin_link(f"{add_opt_out}?{urlencode({'phone': member.phone})}", "Opt out")
            )
        lines.append(
            format_html(
                "History of this number: {}, {}.",
                admin_link(changelist_url(OptOut, q=member.phone), "opt-outs"),
                admin_link(changelist_url(Suppression, q=member.phone), "suppressions"),
            )
        )
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="time zones of the number")
    def number_timezones_display(self, member: Member) -> str:
        return ", ".join(member.number_timezones) or "Unknown"

    @admin.display(description="values")
    def merge_fields_table(self, member: Member) -> str:
        if not member.fields:
            return "None."
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            sorted(
                (str(name), "" if value is None else str(value))
                for name, value in member.fields.items()
            ),
        )
        return format_html('<table class="merge-fields"><tbody>{}</tbody></table>', rows)

    @admin.display(description="registered for")
    def events_registered(self, member: Member) -> str:
        registrations = list(
            member.registrations.select_related("event").order_by(
                "-event__starts_at", "event__name"
            )[: EVENTS_SHOWN_ON_MEMBER + 1]
        )
        manage = admin_link(
            changelist_url(EventRegistration, member__id__exact=member.pk),
            "Manage registrations",
        )
        if not registrations:
            return format_html("No events. {}", manage)
        lines = [
            format_html(
                "{} (registered {})",
                admin_link(change_url(registration.event), registration.event.name),
                local_time(registration.registered_at),
            )
            for registration in registrations[:EVENTS_SHOWN_ON_MEMBER]
        ]
        if len(registrations) > EVENTS_SHOWN_ON_MEMBER:
            lines.append(format_html("{}", "and more…"))
        lines.append(manage)
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


# --- Events and registrations -----------------------------------------------------------


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "starts_at", "location", "registration_count", "member_list")
    search_fields = ("name", "slug", "location")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("member_list", "created_at")
    fields = ("name", "slug", "starts_at", "location", "description", "member_list", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(registration_count=Count("registrations"))

    @admin.display(description="registrations", ordering="registration_count")
    def registration_count(self, event: Event) -> int:
        return event.registration_count  # type: ignore[attr-defined]

    @admin.display(description="registrants")
    def member_list(self, event: Event) -> str:
        if event.pk is None:
            return NOTHING
        return format_html(
            "{} · {}",
            admin_link(changelist_url(Member, event=event.pk), "Members"),
            admin_link(
                changelist_url(EventRegistration, event__id__exact=event.pk), "Registrations"
            ),
        )


@admin.register(EventRegistration)
class EventRegistrationAdmin(PhoneSearchMixin, admin.ModelAdmin):
    phone_search_field = "member__phone"
    list_display = ("member", "event", "registered_at")
    list_filter = ("event",)
    list_select_related = ("member", "event")
    autocomplete_fields = ("member", "event")
    search_fields = ("member__first_name", "member__last_name", "member__phone", "event__name")
    search_help_text = "A member's name or phone number (any format), or an event's name."
    list_per_page = 100
    show_full_result_count = False


# --- Opt-outs and suppressions ----------------------------------------------------------


class ActiveFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("lifted", "Lifted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.active()
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


class ContactBlockAdmin(PhoneSearchMixin, AuditHistoryAdmin):
    """Opt-outs and suppressions are history: added by hand or by the system, lifted, never
    deleted. Lifting needs the change permission (the Admin role)."""

    add_form: type[ModelForm]
    # What the block says, and which of those fields staff may still correct afterwards;
    # the rest is the record.
    detail_fields: tuple[str, ...]
    editable_after_creation: tuple[str, ...]
    record_fields = ("created_at", "created_by", "lifted_at", "lifted_by", "lifted_reason")
    actions = ("lift_selected",)
    search_fields = ("phone",)
    search_help_text = "A phone number in any format."
    list_select_related = ("created_by", "lifted_by")
    list_per_page = 100
    show_full_result_count = False

    def get_form(
        self,
        request: HttpRequest,
        obj: ContactBlock | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ContactBlock | None = None) -> Any:
        if obj is None:
            return self.add_form._meta.fields
        return (*self.detail_fields, *self.record_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ContactBlock | None = None) -> Any:
        if obj is None:
            return ()
        return tuple(
            name
            for name in (*self.detail_fields, *self.record_fields)
            if name not in self.editable_after_creation
        )

    def save_model(
        self, request: HttpRequest, obj: ContactBlock, form: ModelForm, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="active", boolean=True, ordering="lifted_at")
    def active(self, block: ContactBlock) -> bool:
        return block.is_active

    @admin.action(description="Lift: allow texting these numbers again", permissions=["change"])
    def lift_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        opts = self.model._meta
        # Re-read without the list's joins: FOR UPDATE cannot lock across an outer join.
        active = self.model.objects.active().filter(pk__in=queryset.values("pk"))
        if not active.exists():
            self.message_user(
                request,
                f"None of the selected {opts.verbose_name_plural} is active.",
                messages.WARNING,
            )
            return None
        reason = request.POST.get("lift_reason", "").strip()
        if request.POST.get("confirmed") == "yes" and reason:
            with transaction.atomic():
                blocks = list(active.select_for_update())
                for block in blocks:
                    block.lift(by=request.user, reason=reason)
            name = opts.verbose_name if len(blocks) == 1 else opts.verbose_name_plural
            self.message_user(request, f"Lifted {len(blocks)} {name}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Lift {opts.verbose_name_plural}",
            "opts": opts,
            "blocks": list(active.order_by("phone")),
            "reason": reason,
            "reason_missing": request.POST.get("confirmed") == "yes",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/members/lift_confirmation.html", context)


@admin.register(OptOut)
class OptOutAdmin(ContactBlockAdmin):
    add_form = OptOutAddForm
    detail_fields = ("phone", "source", "reason")
    editable_after_creation = ("reason",)
    list_display = (
        "phone",
        "source",
        "reason",
        "created_at",
        "created_by",
        "active",
        "lifted_at",
        "lifted_by",
    )
    list_filter = (ActiveFilter, "source")

    def save_model(self, request: HttpRequest, obj: OptOut, form: ModelForm, change: bool) -> None:
        if not change:
            obj.source = OptOut.Source.STAFF
        super().save_model(request, obj, form, change)


@admin.register(Suppression)
class SuppressionAdmin(ContactBlockAdmin):
    add_form = SuppressionAddForm
    detail_fields = ("phone", "reason", "error_codes", "detail")
    editable_after_creation = ("detail",)
    list_display = (
        "phone",
        "reason",
        "codes",
        "created_at",
        "created_by",
        "active",
        "lifted_at",
        "lifted_by",
    )
    list_filter = (ActiveFilter, "reason")

    @admin.display(description="error codes")
    def codes(self, suppression: Suppression) -> str:
        return ", ".join(str(code) for code in suppression.error_codes) or NOTHING
