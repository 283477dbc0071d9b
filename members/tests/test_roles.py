"""Who may open which admin page: every registered admin, page and role.

The table below is the product's role matrix. A model registered in the admin without a
row here fails its tests: each new admin page must say who may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.roles import ADMIN, SOCIAL_MANAGER
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
    UserFactory,
)

ANONYMOUS = "anonymous"
ROLES = (ADMIN, SOCIAL_MANAGER, ANONYMOUS)
PAGES = ("changelist", "add", "change", "delete")

BOTH_ROLES = frozenset({ADMIN, SOCIAL_MANAGER})
ADMIN_ONLY = frozenset({ADMIN})
NOBODY: frozenset[str] = frozenset()
ADMIN_ONLY_EVERYWHERE = (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY)

# Who may open each page. "change" is also the read-only page of a user who may only view;
# "delete" is the confirmation page. Anonymous visitors may open none of them.
WHO_MAY_OPEN: dict[str, tuple[frozenset[str], ...]] = {
    #  model                              changelist   add         change      delete
    "auth.user":                          ADMIN_ONLY_EVERYWHERE,
    "auth.group":                         ADMIN_ONLY_EVERYWHERE,
    # Login attempts are written by django-axes, never by hand.
    "axes.accessattempt":                 (ADMIN_ONLY, NOBODY,     ADMIN_ONLY, ADMIN_ONLY),
    "axes.accesslog":                     (ADMIN_ONLY, NOBODY,     ADMIN_ONLY, ADMIN_ONLY),
    "axes.accessfailurelog":              (ADMIN_ONLY, NOBODY,     ADMIN_ONLY, ADMIN_ONLY),
    # A draft: Social managers compose and send campaigns but do not delete them.
    "campaigns.campaign":                 (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, ADMIN_ONLY),
    # Written by the sending pipeline only; Social managers follow their messages.
    "delivery.message":                   (BOTH_ROLES, NOBODY,     BOTH_ROLES, NOBODY),
    "delivery.batch":                     (ADMIN_ONLY, NOBODY,     ADMIN_ONLY, NOBODY),
    # API credentials are the Admins'; a key is revoked, never deleted (its history stays).
    "delivery.apikey":                    (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NOBODY),
    # The inbox: written by the inbound webhook; Social managers read, reply, mark handled.
    "delivery.inboundmessage":            (BOTH_ROLES, NOBODY,     BOTH_ROLES, ADMIN_ONLY),
    "django_celery_beat.periodictask":    ADMIN_ONLY_EVERYWHERE,
    "django_celery_beat.intervalschedule": ADMIN_ONLY_EVERYWHERE,
    "django_celery_beat.crontabschedule": ADMIN_ONLY_EVERYWHERE,
    "django_celery_beat.solarschedule":   ADMIN_ONLY_EVERYWHERE,
    "django_celery_beat.clockedschedule": ADMIN_ONLY_EVERYWHERE,
    # Staff enrol their own devices on the enrolment page; Admins remove lost ones.
    "otp_totp.totpdevice":                ADMIN_ONLY_EVERYWHERE,
    "members.member":                     (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, BOTH_ROLES),
    "members.event":                      (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, BOTH_ROLES),
    "members.eventregistration":          (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, BOTH_ROLES),
    "members.importjob":                  (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, ADMIN_ONLY),
    # History: nobody deletes it. Only Admins lift (change) either kind.
    "members.optout":                     (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, NOBODY),
    "members.suppression":                (BOTH_ROLES, ADMIN_ONLY, BOTH_ROLES, NOBODY),
    # A day's message is its history: replaced, never deleted. Approving it is the Admins'.
    "positivity.dailymessage":            (BOTH_ROLES, BOTH_ROLES, BOTH_ROLES, NOBODY),
}  # fmt: skip


def _make_periodic_task() -> object:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(name="demo", task="demo.task", interval=every_minute)


def _make_axes_row(model_name: str) -> Callable[[], object]:
    def make() -> object:
        from django.apps import apps

        fields = {"user_agent": "pytest", "http_accept": "*/*", "path_info": "/admin/login/"}
        if model_name == "accessattempt":
            fields |= {"get_data": "", "post_data": "", "failures_since_start": 1}
        return apps.get_model("axes", model_name).objects.create(
            username="someone", ip_address="127.0.0.1", **fields
        )

    return make


def _make_draft_campaign() -> object:
    from campaigns.models import Campaign

    return Campaign.objects.create(name="Spring news", body="Hi {first_name}!")


def _make_batch() -> object:
    from delivery.models import Batch

    return Batch.objects.create(kind="api", label="API texts", sender="+15005550006")


def _make_message() -> object:
    from delivery.models import Message

    batch = _make_batch()
    return Message.objects.create(
        batch=batch, kind=batch.kind, phone="+14155552671", sender=batch.sender, body="Hi"
    )


def _make_inbound_message() -> object:
    from delivery.models import InboundMessage

    return InboundMessage.objects.create(
        message_sid="SM" + "a" * 32,
        from_phone="+14155552671",
        from_raw="+14155552671",
        to="+15005550006",
        body="Is the picnic still on?",
    )


def _make_daily_message() -> object:
    from positivity.models import DailyMessage

    return DailyMessage.objects.create(
        date=timezone.localdate(), text="Be gentle with yourself today.", source="fallback"
    )


def _make_api_key() -> object:
    from delivery.models import ApiKey

    api_key, _ = ApiKey.objects.create_key(name="CRM", scopes=["send"])
    return api_key


def _make_import_job() -> object:
    from members.models import ImportJob

    return ImportJob.objects.create(file="imports/demo.csv", original_name="demo.csv", region="US")


def _make_totp_device() -> object:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=UserFactory(username="has-a-phone"), name="Phone")


def _make_schedule(model_name: str, **fields: object) -> Callable[[], object]:
    def make() -> object:
        from django.apps import apps

        return apps.get_model("django_celery_beat", model_name).objects.create(**fields)

    return make


# One object per model, for its change and delete pages.
OBJECT_MAKERS: dict[str, Callable[[], object]] = {
    "auth.user": lambda: UserFactory(username="someone-else"),
    "auth.group": lambda: Group.objects.create(name="Volunteers"),
    "axes.accessattempt": _make_axes_row("accessattempt"),
    "axes.accesslog": _make_axes_row("accesslog"),
    "axes.accessfailurelog": _make_axes_row("accessfailurelog"),
    "campaigns.campaign": _make_draft_campaign,
    "delivery.apikey": _make_api_key,
    "delivery.batch": _make_batch,
    "delivery.inboundmessage": _make_inbound_message,
    "delivery.message": _make_message,
    "positivity.dailymessage": _make_daily_message,
    "django_celery_beat.periodictask": _make_periodic_task,
    "django_celery_beat.intervalschedule": _make_schedule(
        "intervalschedule", every=5, period="minutes"
    ),
    "django_celery_beat.crontabschedule": _make_schedule("crontabschedule", minute="0"),
    "django_celery_beat.solarschedule": _make_schedule(
        "solarschedule", event="sunrise", latitude=37.77, longitude=-122.42
    ),
    "django_celery_beat.clockedschedule": _make_schedule(
        "clockedschedule", clocked_time=timezone.now() + timedelta(days=1)
    ),
    "members.member": MemberFactory,
    "otp_totp.totpdevice": _make_totp_device,
    "members.event": EventFactory,
    "members.eventregistration": EventRegistrationFactory,
    "members.importjob": _make_import_job,
    "members.optout": OptOutFactory,
    "members.suppression": SuppressionFactory,
}

REGISTERED_MODELS = sorted(model._meta.label_lower for model in admin.site._registry)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_as(role: str) -> Client:
    client = Client()
    if role != ANONYMOUS:
        client.force_login(UserFactory(username=f"{role.lower().replace(' ', '-')}", role=role))
    return client


def page_url(model_label: str, page: str) -> str:
    app_label, model_name = model_label.split(".")
    name = f"admin:{app_label}_{model_name}_{page}"
    if page in {"change", "delete"}:
        return reverse(name, args=[OBJECT_MAKERS[model_label]().pk])  # type: ignore[attr-defined]
    return reverse(name)


def assert_refused(response: object, role: str) -> None:
    if role == ANONYMOUS:
        assert response.status_code == 302  # type: ignore[attr-defined]
        assert response["Location"].startswith(reverse("admin:login"))  # type: ignore[index]
    else:
        assert response.status_code == 403  # type: ignore[attr-defined]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model_label", REGISTERED_MODELS)
def test_admin_page_is_open_exactly_to_the_roles_in_the_matrix(
    model_label: str, page: str, role: str
) -> None:
    assert model_label in WHO_MAY_OPEN, (
        f"{model_label} is registered in the admin: add it to WHO_MAY_OPEN (who may use it?)"
    )
    may_open = role in WHO_MAY_OPEN[model_label][PAGES.index(page)]
    client = client_as(role)

    response = client.get(page_url(model_label, page))

    if may_open:
        assert response.status_code == 200
    else:
        assert_refused(response, role)


def test_role_matrix_lists_only_models_registered_in_the_admin() -> None:
    assert sorted(WHO_MAY_OPEN) == REGISTERED_MODELS
    assert sorted(OBJECT_MAKERS) == REGISTERED_MODELS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "expected_status"), [(ADMIN, 200), (SOCIAL_MANAGER, 200), (ANONYMOUS, 302)]
)
def test_admin_index_is_open_to_staff_of_both_roles(role: str, expected_status: int) -> None:
    response = client_as(role).get(reverse("admin:index"))

    assert response.status_code == expected_status


@pytest.mark.django_db
def test_social_manager_index_lists_exactly_the_models_the_matrix_opens_to_them() -> None:
    response = client_as(SOCIAL_MANAGER).get(reverse("admin:index"))

    listed = {
        f"{app['app_label']}.{model['object_name'].lower()}"
        for app in response.context["app_list"]
        for model in app["models"]
    }
    expected = {
        label
        for label, pages in WHO_MAY_OPEN.items()
        if SOCIAL_MANAGER in pages[PAGES.index("changelist")]
    }
    assert listed == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "factory", [OptOutFactory, SuppressionFactory], ids=["optout", "suppression"]
)
def test_social_manager_cannot_change_an_opt_out_or_suppression(factory: Callable) -> None:
    block = factory(phone="+14155552671")
    reason_before = block.reason
    opts = block._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[block.pk])
    client = client_as(SOCIAL_MANAGER)

    page = client.get(url)
    response = client.post(url, {"phone": "+14155550000", "reason": "edited", "detail": "x"})

    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert response.status_code == 403
    block.refresh_from_db()
    assert (block.phone, block.reason, block.lifted_at) == ("+14155552671", reason_before, None)


@pytest.mark.django_db
def test_social_manager_cannot_give_themselves_the_admin_role() -> None:
    manager = UserFactory(username="manager", role=SOCIAL_MANAGER)
    client = Client()
    client.force_login(manager)

    response = client.post(
        reverse("admin:auth_user_change", args=[manager.pk]),
        {"username": "manager", "groups": [Group.objects.get(name=ADMIN).pk], "is_staff": "on"},
    )

    assert response.status_code == 403
    assert list(manager.groups.values_list("name", flat=True)) == [SOCIAL_MANAGER]
