"""The opt-out and suppression admin: added by phone, found by phone, lifted, never deleted."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from members.models import Member, OptOut, Suppression
from members.tests.factories import (
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
    admin_user,
    social_manager,
)

pytestmark = pytest.mark.django_db

OPT_OUTS_URL = reverse("admin:members_optout_changelist")
SUPPRESSIONS_URL = reverse("admin:members_suppression_changelist")
ADD_OPT_OUT_URL = reverse("admin:members_optout_add")
ADD_SUPPRESSION_URL = reverse("admin:members_suppression_add")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_role():
    return admin_user(username="alice")


@pytest.fixture
def admin_client(admin_role) -> Client:
    client = Client()
    client.force_login(admin_role)
    return client


@pytest.fixture
def manager():
    return social_manager(username="sam")


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def listed(client: Client, url: str, **params: object) -> list:
    response = client.get(url, params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def block_state(model: type) -> list[tuple]:
    return list(model.objects.order_by("pk").values_list("pk", "phone", "lifted_at", "lifted_by"))


def available_actions(client: Client, url: str) -> list[str]:
    action_form = client.get(url).context["action_form"]
    return [] if action_form is None else [name for name, _ in action_form.fields["action"].choices]


def lift(client: Client, url: str, blocks: list, **extra: str):
    return client.post(
        url,
        {"action": "lift_selected", ACTION_CHECKBOX_NAME: [block.pk for block in blocks], **extra},
    )


# --- Adding by hand ------------------------------------------------------------------------


@pytest.mark.parametrize("client_fixture", ["admin_client", "manager_client"])
def test_staff_opt_out_is_stored_normalised_with_source_staff_and_who_added_it(
    request, client_fixture
):
    client = request.getfixturevalue(client_fixture)
    user = client.session["_auth_user_id"]

    response = client.post(
        ADD_OPT_OUT_URL, {"phone": "(415) 555-2671", "reason": "Asked at the picnic"}
    )

    assert response.status_code == 302
    opt_out = OptOut.objects.get()
    assert (opt_out.phone, opt_out.source, opt_out.reason) == (
        "+14155552671",
        OptOut.Source.STAFF,
        "Asked at the picnic",
    )
    assert str(opt_out.created_by_id) == user
    assert opt_out.is_active


def test_staff_opt_out_of_an_invalid_number_is_refused_and_nothing_saved(manager_client):
    response = manager_client.post(ADD_OPT_OUT_URL, {"phone": "555-12", "reason": ""})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone"] == [
        "Too short to be a phone number. Please check the number."
    ]
    assert OptOut.objects.count() == 0


def test_opting_out_a_number_already_opted_out_is_refused(manager_client):
    existing = OptOutFactory(phone="+14155552671")

    response = manager_client.post(ADD_OPT_OUT_URL, {"phone": "415.555.2671", "reason": ""})

    assert response.context["adminform"].form.errors["phone"] == [
        "This number is already opted out."
    ]
    assert list(OptOut.objects.all()) == [existing]


def test_a_number_whose_opt_out_was_lifted_can_be_opted_out_again(manager_client):
    lifted = OptOutFactory(phone="+14155552671")
    lifted.lift(reason="texted START")

    response = manager_client.post(ADD_OPT_OUT_URL, {"phone": "4155552671", "reason": ""})

    assert response.status_code == 302
    assert OptOut.objects.active().get().phone == "+14155552671"
    assert OptOut.objects.count() == 2


def test_admin_suppresses_a_number_by_hand(admin_client, admin_role):
    response = admin_client.post(
        ADD_SUPPRESSION_URL,
        {"phone": "+1 (212) 555-0199", "reason": "staff", "detail": "Wrong person"},
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.phone, suppression.reason, suppression.created_by) == (
        "+12125550199",
        Suppression.Reason.STAFF,
        admin_role,
    )


def test_social_manager_cannot_add_a_suppression(manager_client):
    response = manager_client.post(
        ADD_SUPPRESSION_URL, {"phone": "+12125550199", "reason": "staff", "detail": ""}
    )

    assert response.status_code == 403
    assert Suppression.objects.count() == 0


def test_admin_changing_an_opt_out_can_edit_the_reason_but_not_the_number(admin_client):
    opt_out = OptOutFactory(phone="+14155552671", reason="STOP")
    url = reverse("admin:members_optout_change", args=[opt_out.pk])

    response = admin_client.post(url, {"phone": "+14155550000", "reason": "STOP (by phone)"})

    assert response.status_code == 302
    opt_out.refresh_from_db()
    assert (opt_out.phone, opt_out.reason, opt_out.source) == (
        "+14155552671",
        "STOP (by phone)",
        OptOut.Source.KEYWORD,
    )


# --- Lists, search and filters -------------------------------------------------------------


@pytest.mark.parametrize("typed", ["(415) 555-2671", "415.555.2671", "+1 415 555 2671"])
@pytest.mark.parametrize(
    ("factory", "url"),
    [(OptOutFactory, OPT_OUTS_URL), (SuppressionFactory, SUPPRESSIONS_URL)],
    ids=["opt-outs", "suppressions"],
)
def test_blocks_are_found_by_phone_in_any_format(manager_client, factory, url, typed):
    wanted = factory(phone="+14155552671")
    factory(phone="+14155552672")

    assert listed(manager_client, url, q=typed) == [wanted]


def test_suppressed_landline_is_found_by_its_local_format(admin_client):
    # The normaliser refuses landlines (they cannot get texts), but that is why they are here.
    wanted = SuppressionFactory(phone="+442079460958")
    SuppressionFactory(phone="+14155552671")

    assert listed(admin_client, SUPPRESSIONS_URL, q="+44 20 7946 0958") == [wanted]


def test_opt_out_filters_by_status_and_source(manager_client):
    keyword = OptOutFactory(source=OptOut.Source.KEYWORD)
    staff = OptOutFactory(source=OptOut.Source.STAFF)
    lifted = OptOutFactory(source=OptOut.Source.KEYWORD)
    lifted.lift(reason="texted START")

    assert set(listed(manager_client, OPT_OUTS_URL, status="active")) == {keyword, staff}
    assert listed(manager_client, OPT_OUTS_URL, status="lifted") == [lifted]
    assert listed(manager_client, OPT_OUTS_URL, source__exact="staff") == [staff]
    assert set(listed(manager_client, OPT_OUTS_URL)) == {keyword, staff, lifted}


def test_suppression_filters_by_status_and_reason(manager_client):
    landline = SuppressionFactory(reason=Suppression.Reason.LANDLINE)
    unreachable = SuppressionFactory(reason=Suppression.Reason.UNREACHABLE)
    unreachable.lift(reason="number ported")

    assert listed(manager_client, SUPPRESSIONS_URL, status="active") == [landline]
    assert listed(manager_client, SUPPRESSIONS_URL, reason__exact="unreachable") == [unreachable]


def test_suppression_list_shows_codes_who_created_and_whether_active(admin_client, admin_role):
    SuppressionFactory(phone="+14155552671", error_codes=[30003, 30005], created_by=admin_role)

    html = admin_client.get(SUPPRESSIONS_URL).content.decode()

    assert "30003, 30005" in html
    assert "alice" in html
    assert 'alt="True"' in html  # the "active" icon


# --- Lifting -------------------------------------------------------------------------------


def test_lift_asks_for_a_reason_before_lifting_anything(admin_client):
    opt_out = OptOutFactory(phone="+14155552671")
    before = block_state(OptOut)

    response = lift(admin_client, OPT_OUTS_URL, [opt_out])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/members/lift_confirmation.html"
    assert "+14155552671" in response.content.decode()
    assert block_state(OptOut) == before


def test_admin_lifts_opt_outs_and_the_rows_stay_as_history(admin_client, admin_role):
    member = MemberFactory(phone="+14155552671")
    lifted, untouched = OptOutFactory(phone=member.phone), OptOutFactory()

    response = lift(
        admin_client, OPT_OUTS_URL, [lifted], confirmed="yes", lift_reason="Asked by phone"
    )

    assert response.status_code == 302
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Lifted 1 opt-out."
    ]
    lifted.refresh_from_db()
    assert lifted.lifted_at is not None
    assert (lifted.lifted_by, lifted.lifted_reason) == (admin_role, "Asked by phone")
    assert OptOut.objects.count() == 2
    assert list(OptOut.objects.active()) == [untouched]
    assert list(Member.objects.textable()) == [member]


def test_admin_lifts_a_suppression(admin_client, admin_role):
    suppression = SuppressionFactory()

    lift(admin_client, SUPPRESSIONS_URL, [suppression], confirmed="yes", lift_reason="Ported")

    suppression.refresh_from_db()
    assert (suppression.lifted_by, suppression.lifted_reason) == (admin_role, "Ported")
    assert Suppression.objects.count() == 1


def test_lift_without_a_reason_lifts_nothing(admin_client):
    opt_out = OptOutFactory()
    before = block_state(OptOut)

    response = lift(admin_client, OPT_OUTS_URL, [opt_out], confirmed="yes", lift_reason="  ")

    assert response.status_code == 200
    assert "Please say why" in response.content.decode()
    assert block_state(OptOut) == before


def test_lifting_an_already_lifted_opt_out_changes_nothing(admin_client):
    opt_out = OptOutFactory()
    opt_out.lift(reason="first time")
    before = block_state(OptOut)

    response = lift(admin_client, OPT_OUTS_URL, [opt_out], confirmed="yes", lift_reason="again")

    assert response.status_code == 302
    assert block_state(OptOut) == before
    opt_out.refresh_from_db()
    assert opt_out.lifted_reason == "first time"


@pytest.mark.parametrize(
    ("factory", "url"),
    [(OptOutFactory, OPT_OUTS_URL), (SuppressionFactory, SUPPRESSIONS_URL)],
    ids=["opt-outs", "suppressions"],
)
def test_social_manager_has_no_lift_action_and_cannot_lift(manager_client, factory, url):
    block = factory()
    before = block_state(block._meta.model)

    actions = available_actions(manager_client, url)
    response = lift(manager_client, url, [block], confirmed="yes", lift_reason="trying")

    assert actions == []
    assert response.status_code in {200, 302}  # "No action selected", nothing done
    assert block_state(block._meta.model) == before


@pytest.mark.parametrize(
    ("factory", "url"),
    [(OptOutFactory, OPT_OUTS_URL), (SuppressionFactory, SUPPRESSIONS_URL)],
    ids=["opt-outs", "suppressions"],
)
def test_admin_has_the_lift_action_and_no_delete_action(admin_client, factory, url):
    factory()

    assert available_actions(admin_client, url) == ["", "lift_selected"]


@pytest.mark.parametrize("client_fixture", ["admin_client", "manager_client"])
@pytest.mark.parametrize(
    "factory", [OptOutFactory, SuppressionFactory], ids=["opt-out", "suppression"]
)
def test_nobody_deletes_an_opt_out_or_suppression(request, client_fixture, factory):
    client = request.getfixturevalue(client_fixture)
    block = factory()
    opts = block._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[block.pk])

    response = client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert block._meta.model.objects.filter(pk=block.pk, lifted_at=None).exists()
