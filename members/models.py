"""Who we text: members, events and their registrations, and the numbers we must not text."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone as django_timezone

from members.fields import PhoneField


def staff_reference() -> models.ForeignKey:
    """Who on staff did something (approved, lifted, edited...): kept as a record, not
    editable, and emptied rather than blocking when that user is deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )


class MemberQuerySet(models.QuerySet["Member"]):
    def with_contact_flags(self) -> MemberQuerySet:
        """Annotate ``is_opted_out`` and ``is_suppressed`` (one indexed lookup each)."""
        return self.annotate(
            is_opted_out=Exists(OptOut.objects.active().filter(phone=OuterRef("phone"))),
            is_suppressed=Exists(Suppression.objects.active().filter(phone=OuterRef("phone"))),
        )

    def opted_out(self) -> MemberQuerySet:
        return self.filter(Exists(OptOut.objects.active().filter(phone=OuterRef("phone"))))

    def suppressed(self) -> MemberQuerySet:
        return self.filter(Exists(Suppression.objects.active().filter(phone=OuterRef("phone"))))

    def textable(self) -> MemberQuerySet:
        """Members we may text: neither opted out nor suppressed."""
        return self.exclude(
            Exists(OptOut.objects.active().filter(phone=OuterRef("phone")))
        ).exclude(Exists(Suppression.objects.active().filter(phone=OuterRef("phone"))))


class Member(models.Model):
    """A person we may text, known by one normalised E.164 phone number.

    ``fields`` holds every other imported column; the campaign templates use them as
    merge fields. ``timezone`` is what staff or an import said; when it is blank the
    zones come from the number (``number_timezones``). A number can map to several zones
    (an Australian mobile maps to all of Australia's): we keep them all, and quiet hours
    allow a text only when it is inside the window in every one of them, the strictest
    reading.
    """

    # Unique through Meta.constraints: a plain unique index, without the extra LIKE index
    # that unique=True adds on PostgreSQL (phones are matched exactly, never by prefix).
    phone = PhoneField()
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    fields = models.JSONField(
        "merge fields", default=dict, blank=True, help_text="Other imported columns, by name."
    )
    timezone = models.CharField(
        max_length=64, blank=True, help_text="IANA time zone; blank means: from the number."
    )
    number_timezones = models.JSONField(
        default=list, blank=True, editable=False, help_text="Time zones of the phone number."
    )
    is_community = models.BooleanField("in the community pool", default=True)
    is_daily_subscriber = models.BooleanField("daily message subscriber", default=False)
    daily_send_time = models.TimeField(
        "daily message time",
        null=True,
        blank=True,
        help_text="Local time the daily message is sent; blank: the default time.",
    )
    # When the subscriber was sent the program's confirmation (or texted the join
    # keyword and got it as the answer). The daily message goes only to confirmed
    # subscribers, so nobody gets it without having been told what it is.
    daily_confirmed_at = models.DateTimeField(
        "daily subscription confirmed", null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    updated_at = models.DateTimeField(default=django_timezone.now, editable=False)

    objects = MemberQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [models.UniqueConstraint(fields=["phone"], name="one_member_per_phone")]
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
            # The daily delivery reads only subscribers: a small index, not a member scan.
            models.Index(
                fields=["timezone", "daily_send_time"],
                condition=Q(is_daily_subscriber=True),
                name="member_daily_subscriber_idx",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} ({self.phone})" if name else self.phone

    @property
    def timezones(self) -> list[str]:
        """The zones quiet hours are checked in: the member's own, else the number's."""
        return [self.timezone] if self.timezone else list(self.number_timezones)


class Event(models.Model):
    """Something members register for; its registrants are an audience of their own."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    location = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    members = models.ManyToManyField(
        Member, through="EventRegistration", related_name="events", blank=True
    )

    class Meta:
        ordering = ["-starts_at", "name"]

    def __str__(self) -> str:
        return self.name


class EventRegistration(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="registrations")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="registrations")
    registered_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "member"], name="one_registration_per_member")
        ]
        indexes = [models.Index(fields=["member"])]

    def __str__(self) -> str:
        return f"{self.member} at {self.event}"


class ContactBlockQuerySet(models.QuerySet):
    def active(self) -> ContactBlockQuerySet:
        return self.filter(lifted_at__isnull=True)


class ContactBlock(models.Model):
    """A phone we must not text, until lifted. Lifted rows stay as history."""

    phone = PhoneField()
    created_at = models.DateTimeField(default=django_timezone.now, db_index=True)
    created_by = staff_reference()
    lifted_at = models.DateTimeField(null=True, blank=True, editable=False)
    lifted_by = staff_reference()
    lifted_reason = models.CharField(max_length=255, blank=True, editable=False)

    objects = ContactBlockQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None

    def lift(self, *, by: object | None = None, reason: str = "") -> None:
        """End the block; the row stays as history."""
        self.lifted_at = django_timezone.now()
        self.lifted_by = by  # type: ignore[assignment]
        self.lifted_reason = reason
        self.save(update_fields=["lifted_at", "lifted_by", "lifted_reason"])


class OptOut(ContactBlock):
    """A phone that said STOP, or that staff removed. START lifts it."""

    class Source(models.TextChoices):
        KEYWORD = "keyword", "Texted a stop keyword"
        CARRIER = "carrier", "Opted out at the carrier"
        STAFF = "staff", "Removed by staff"
        IMPORT = "import", "Imported"
        API = "api", "Through the API"

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STAFF)
    reason = models.CharField(
        max_length=255, blank=True, help_text="The keyword texted, or why staff removed it."
    )

    class Meta(ContactBlock.Meta):
        verbose_name = "opt-out"
        constraints = [
            models.UniqueConstraint(
                fields=["phone"],
                condition=Q(lifted_at__isnull=True),
                name="one_active_optout_per_phone",
            )
        ]
        indexes = [models.Index(fields=["phone"], name="optout_phone_idx")]

    def __str__(self) -> str:
        return f"{self.phone} opted out ({self.get_source_display()})"


class Suppression(ContactBlock):
    """A phone we stop texting because delivery to it keeps failing."""

    class Reason(models.TextChoices):
        INVALID = "invalid", "Not a valid number"
        LANDLINE = "landline", "Landline or not a mobile"
        UNREACHABLE = "unreachable", "Unreachable"
        BLOCKED = "blocked", "Blocked by the carrier"
        STAFF = "staff", "Suppressed by staff"

    reason = models.CharField(max_length=16, choices=Reason.choices)
    error_codes = models.JSONField(
        default=list, blank=True, help_text="The provider error codes that caused it."
    )
    detail = models.TextField(blank=True)

    class Meta(ContactBlock.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["phone"],
                condition=Q(lifted_at__isnull=True),
                name="one_active_suppression_per_phone",
            )
        ]
        indexes = [models.Index(fields=["phone"], name="suppression_phone_idx")]

    def __str__(self) -> str:
        return f"{self.phone} suppressed ({self.get_reason_display()})"


class ImportJob(models.Model):
    """One CSV upload from the admin: validated first (a preview), then imported on confirm.

    ``uploaded → validating → validated → queued → importing → done``; ``failed`` when the file
    cannot be read at all. Row-level problems never fail the job: they are counted and
    written to ``error_report``.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        VALIDATING = "validating", "Checking rows"
        VALIDATED = "validated", "Ready to import"
        QUEUED = "queued", "Waiting for a worker"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    file = models.FileField(upload_to="imports/%Y/%m/%d/")
    original_name = models.CharField(max_length=255)
    region = models.CharField(max_length=2, help_text="Region for numbers without a +.")
    event_slug = models.SlugField(
        max_length=100, blank=True, help_text="Register every row for this event."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    bytes_total = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    rows_read = models.IntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors_preview = models.JSONField(default=list, blank=True)
    error_report = models.FileField(upload_to="imports/reports/%Y/%m/%d/", blank=True)
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=django_timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the job was last queued, claimed or touched by its worker: beat queues a job
    # again once this is older than IMPORT_STALE_SECONDS (members.importing.recovery).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "member import"

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int:
        if self.status in {self.Status.VALIDATED, self.Status.DONE}:
            return 100
        if not self.bytes_total:
            return 0
        return min(100, int(100 * self.bytes_read / self.bytes_total))


class StaffProfile(models.Model):
    """What we know about a staff user beyond Django's user: the phone test texts go to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    phone = PhoneField(blank=True, help_text="Test messages are sent here.")

    def __str__(self) -> str:
        return f"Profile of {self.user}"
