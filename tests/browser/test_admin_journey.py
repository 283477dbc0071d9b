"""The admin in a real browser, against a live server, a real Celery worker and the fake
Twilio: a Social manager imports members and writes a campaign, an Admin approves it, it
is sent, and a member's STOP shows in the inbox. Screenshots of each step are kept under
var/test-artifacts/browser/."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from campaigns.models import Campaign
from campaigns.services import finish_sent_campaigns
from delivery.models import InboundMessage, Message
from delivery.tasks import sweep
from members.models import ImportJob, Member, OptOut
from members.tests.factories import admin_user, social_manager
from smsadmin.testing.waiting import wait_until
from tests.browser.conftest import log_in, text_us

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

# Eight rows: five good (one of them opted out long ago), three that must be rejected.
MEMBERS_CSV = """\
phone,first_name,email,neighborhood
(415) 555-0100,Ada,ada@example.org,Mission
415.555.0101,,,Sunset
not a phone,Bob,,Mission
415-555-0102,Cy,,Richmond
,Dee,,Mission
415 555 0103,Eve,,Excelsior
4155550104,Fay,,Bayview
415 555 0105,Hal,not-an-email,Mission
"""
REJECTED_ROWS = [
    ("4", "not a phone", "Not a phone number."),
    ("6", "", "No phone number."),
    ("9", "415 555 0105", "invalid email"),
]
OPTED_OUT = "+14155550104"
BODY = (
    "Hi {first_name|friend}, the community garden opens Saturday at 10 on Alemany Blvd. "
    "Bring gloves and a water bottle: we have tools, seedlings and lemonade for everyone. "
    "Reply STOP to opt out."
)
GREETINGS = {
    "+14155550100": "Hi Ada,",
    "+14155550101": "Hi friend,",
    "+14155550102": "Hi Cy,",
    "+14155550103": "Hi Eve,",
}
STOP_CONFIRMATION = (
    "You're unsubscribed from Garden Club. No more messages. Reply START to resubscribe."
)


def accept_confirmations(page: Page) -> None:
    """Say OK to the "Send this campaign…?" questions of the irreversible buttons."""
    page.on("dialog", lambda dialog: dialog.accept())


def expect_count(table: Locator, label: str, count: int) -> None:
    """A row of the import's counts table reads exactly this label, then this count."""
    row = table.locator("tr").filter(
        has=table.page.get_by_role("rowheader", name=label, exact=True)
    )
    expect(row).to_have_text(re.compile(rf"^{re.escape(label)}\s*{count}$"))


def admin_messages(page: Page) -> Locator:
    """The admin's "what happened" messages (the preview's warnings use the same class)."""
    return page.locator("ul.messagelist:not(.campaign-warnings)")


def bodies_sent_per_phone(fake_twilio: Any) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for request in fake_twilio.requests:
        if request.method == "POST" and request.status == 201:
            sent.setdefault(request.form["To"], []).append(request.form["Body"])
    return sent


def test_import_compose_approve_send_and_read_the_stop_in_the_inbox(
    staff_page, screenshots, sending_worker, fake_twilio, live_server
):
    OptOut.objects.create(phone=OPTED_OUT, source="keyword", reason="STOP")
    social_manager(username="maria", first_name="Maria")
    admin_user(username="ade", first_name="Ade")

    # 1. The Social manager logs in and imports a CSV with three bad rows.
    manager = staff_page()
    log_in(manager, "maria")
    expect(manager.locator("#user-tools")).to_contain_text("Maria")
    screenshots.take(manager, "login")

    manager.goto(reverse("admin:members_importjob_add"))
    manager.get_by_label("CSV file").set_input_files(
        files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": MEMBERS_CSV.encode()}]
    )
    manager.get_by_role("button", name="Upload and check").click()
    # The page follows the worker's check and reloads itself once it is done.
    expect(manager.locator("#import-status")).to_have_text("Ready to import")
    rows = manager.locator("#rejected-rows tbody tr")
    expect(rows).to_have_count(len(REJECTED_ROWS))
    for row, cells in zip(rows.all(), REJECTED_ROWS, strict=True):
        expect(row.locator("td")).to_have_text(list(cells))
    counts = manager.locator(".import-counts")
    expect_count(counts, "Members to create", 5)
    expect_count(counts, "Rejected rows", 3)
    expect_count(counts, "Opted out (stay opted out)", 1)
    assert not Member.objects.exists()  # nothing is imported before the confirmation
    screenshots.take(manager, "import-errors")

    manager.get_by_role("button", name="Confirm import").click()
    expect(admin_messages(manager)).to_contain_text("The import has started")
    # The page follows the job (waiting for a worker, then importing) and reloads itself.
    expect(manager.locator("#import-status")).to_have_text("Imported", timeout=30_000)
    expect_count(counts, "Members created", 5)
    assert ImportJob.objects.get().status == ImportJob.Status.DONE
    assert sorted(Member.objects.values_list("phone", "first_name")) == [
        ("+14155550100", "Ada"),
        ("+14155550101", ""),
        ("+14155550102", "Cy"),
        ("+14155550103", "Eve"),
        ("+14155550104", "Fay"),
    ]
    screenshots.take(manager, "import-done")

    # 2. They compose a campaign with a merge field, read its preview and submit it.
    manager.goto(reverse("admin:campaigns_campaign_add"))
    manager.get_by_label("Name").fill("Garden opening")
    manager.get_by_label("Body").fill(BODY)
    # Members' quiet hours have tests of their own; this one must send at any hour.
    manager.get_by_label("Respect quiet hours").uncheck()
    expect(manager.locator(".campaign-counter")).to_contain_text("GSM-7 · 2 segments")
    manager.get_by_role("button", name="Save and continue editing").click()
    campaign = Campaign.objects.get()
    assert manager.url.endswith(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    preview = manager.locator("#campaign-preview")
    expect(preview.locator(".campaign-recipients")).to_contain_text(
        "4 recipients of 5 in the pool. Left out: 1 opted out, 0 suppressed"
    )
    expect(preview.locator(".campaign-segments")).to_contain_text("GSM-7 · 2 segments per message")
    # 4 recipients, 2 segments each, at 0.0083 a segment: 0.0664, shown to the cent.
    assert settings.SMS_PRICE_PER_SEGMENT == 0.0083
    expect(preview.locator(".campaign-cost")).to_contain_text(
        "Estimated total: 8 segments, about 0.07 USD"
    )
    samples = preview.locator(".campaign-samples tbody tr")
    expect(samples).to_have_count(4)
    expect(samples.nth(1)).to_contain_text("Hi friend, the community garden")
    actions = manager.locator("#campaign-actions")
    expect(actions.get_by_role("button", name="Send now")).to_have_count(0)
    screenshots.take(manager, "campaign-preview")

    actions.get_by_role("button", name="Submit for approval").click()
    expect(admin_messages(manager)).to_contain_text("Submitted for approval")
    expect(actions.locator(".campaign-approval")).to_contain_text("Approval: Submitted")
    expect(actions.get_by_role("button", name="Send now")).to_have_count(0)
    expect(actions.get_by_role("button", name="Approve")).to_have_count(0)  # not theirs
    screenshots.take(manager, "submitted")

    # 3. An Admin, in a browser of their own, approves it.
    admin = staff_page()
    accept_confirmations(admin)
    log_in(admin, "ade")
    admin.goto(reverse("admin:campaigns_campaign_changelist"))
    admin.get_by_role("link", name="Garden opening").click()
    admin.locator("#campaign-actions").get_by_role("button", name="Approve").click()
    expect(admin_messages(admin)).to_contain_text("Approved: it may now be sent")
    expect(admin.locator(".campaign-approval")).to_contain_text("approved by ade")
    screenshots.take(admin, "approved")

    # 4. The manager sends it; the progress bar reaches 100 %.
    accept_confirmations(manager)
    manager.reload()
    actions.get_by_role("button", name="Send now").click()
    expect(admin_messages(manager)).to_contain_text("Sending started: 4 recipients.")
    bar = manager.locator("#campaign-progress progress")

    def progress_reaches_100() -> bool:
        # What beat does every few seconds: apply status reports that came back before
        # their message's SID was written down.
        sweep()
        manager.reload()
        return bar.get_attribute("value") == "100"

    wait_until(progress_reaches_100, timeout=60, what="the progress bar to reach 100 %")
    expect(manager.locator("#campaign-progress")).to_contain_text("4 of 4 messages finished (100%)")
    # Every message delivered, none in any other status.
    expect(manager.locator(".campaign-status-counts tbody tr")).to_have_text(
        [
            re.compile(rf"^{label}\s*{4 if status == Message.Status.DELIVERED else 0}$")
            for status, label in Message.Status.choices
        ]
    )
    screenshots.take(manager, "sent-100-percent")

    assert finish_sent_campaigns() == [campaign.pk]  # beat's other job: sending is over
    manager.reload()
    expect(actions.get_by_role("heading")).to_have_text("Done")
    sent = bodies_sent_per_phone(fake_twilio)
    assert Counter({phone: len(bodies) for phone, bodies in sent.items()}) == Counter(
        dict.fromkeys(GREETINGS, 1)
    )
    for phone, greeting in GREETINGS.items():
        assert sent[phone] == [BODY.replace("Hi {first_name|friend},", greeting)]

    # 5. Ada texts STOP; the manager finds it in the inbox.
    ada = "+14155550100"
    stop = {"MessageSid": "SM" + "5" * 32, "From": ada, "To": campaign.sender, "Body": "STOP"}
    text_us(live_server, fake_twilio, {**stop, "NumMedia": "0"})
    wait_until(
        lambda: len(bodies_sent_per_phone(fake_twilio)[ada]) == 2,
        timeout=30,
        what="the STOP confirmation to be sent",
    )
    assert bodies_sent_per_phone(fake_twilio)[ada][1] == STOP_CONFIRMATION
    assert OptOut.objects.active().filter(phone=ada).exists()

    manager.goto(reverse("admin:delivery_inboundmessage_changelist"))
    inbox = manager.locator("#result_list tbody tr")
    expect(inbox).to_have_count(1)
    expect(inbox.locator(".field-from_phone")).to_have_text(ada)
    expect(inbox.locator(".field-member_link")).to_have_text(f"Ada ({ada})")
    expect(inbox.locator(".field-short_body")).to_have_text("STOP")
    expect(inbox.locator(".field-action")).to_have_text("Opted out")
    assert InboundMessage.objects.get().action == InboundMessage.Action.OPTED_OUT
    screenshots.take(manager, "inbox-stop")


def test_repeated_bad_passwords_lock_the_login_and_the_page_says_so(
    staff_page, screenshots, settings
):
    social_manager(username="alice")
    page = staff_page()
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5

    for attempt in range(1, limit):
        log_in(page, "alice", "not the password")
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator(".errornote")).to_contain_text(
            "Please enter the correct username and password"
        )
        if attempt == 1:
            screenshots.take(page, "wrong-password")

    # The last failure allowed reaches the limit: from it on, the lockout page answers.
    log_in(page, "alice", "not the password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed logins")
    expect(page.locator(".errornote")).to_have_text(
        f"Logging in as alice from this address failed {limit} times, so it is paused."
    )
    expect(page.locator("#content-main")).to_contain_text(
        "Try again in 15 minutes, or ask an Admin to unlock your account."
    )
    expect(page.locator("#login-form")).to_have_count(0)
    screenshots.take(page, "locked-out")

    page.get_by_role("link", name="Back to the login page").click()
    log_in(page, "alice")  # the right password, still locked out
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed logins")
    expect(page.locator("#user-tools")).to_have_count(0)
    screenshots.take(page, "locked-out-right-password")
