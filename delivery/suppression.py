"""What failed deliveries lead to: block a number that keeps failing, pause a batch whose
failures are our own fault.

``RULES`` says what each kind of provider error (see ``delivery.errors``) leads to:

- opted out at the carrier (21610): an :class:`OptOut` from the ``carrier``, at once;
- permanent (not a valid number, a landline...): a :class:`Suppression` at once;
- soft (blocked): a suppression after 2 failures within the window;
- transient, about the recipient (unreachable, unknown error): a suppression after
  ``SUPPRESS_AFTER_CONSECUTIVE_FAILURES`` failures within ``SUPPRESS_FAILURE_WINDOW_DAYS``;
- ours (content filtered, sender not registered, account trouble): never the recipient's
  fault. Each is logged as an error, and a batch pauses itself once such failures reach
  ``AUTO_PAUSE_SENDER_ERRORS_MIN`` and ``AUTO_PAUSE_SENDER_ERROR_RATE`` of its finished
  messages.

A number is judged on what the database holds, not on the failure that woke the rules
up, so the live hooks and ``backfill_suppressions`` decide alike and a second run changes
nothing. The evidence is the number's failures since its last delivered message and since
staff last lifted a block of that type: a delivery proves the number works, and a lift
means "try it again". Failures that say nothing about the recipient (our own errors,
unknown codes, a rate limit) neither count nor reset the count.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from delivery.dispatch import dispatch_batch
from delivery.errors import PROVIDER_ERRORS, ErrorKind, describe_error, error_kind
from delivery.models import Batch, Message
from members.models import ContactBlock, OptOut, Suppression
from members.services import opt_out_phone
from smsadmin.metrics import recording as metrics

logger = logging.getLogger(__name__)

Status = Message.Status
FAILED_STATUSES = (Status.FAILED, Status.UNDELIVERED)
# Messages with a final answer from the provider. Canceled ones never reached it, so they
# do not dilute the share of our own errors in a batch.
REPORTED_STATUSES = (Status.DELIVERED, *FAILED_STATUSES)
# Lines of failure history kept in a suppression's detail.
DETAIL_MAX_FAILURES = 10


class Action(StrEnum):
    OPT_OUT = "opt_out"
    SUPPRESS = "suppress"
    PAUSE_BATCH = "pause_batch"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Rule:
    action: Action
    # Failures of the number it takes; more than one must fall within the window.
    failures: int = 1
    # The setting that holds ``failures`` instead, for a rule staff may tune.
    failures_setting: str = ""

    def failures_needed(self) -> int:
        if self.failures_setting:
            return int(getattr(settings, self.failures_setting))
        return self.failures


RULES: dict[ErrorKind, Rule] = {
    ErrorKind.OPTED_OUT: Rule(Action.OPT_OUT),
    ErrorKind.PERMANENT: Rule(Action.SUPPRESS),
    ErrorKind.SOFT: Rule(Action.SUPPRESS, failures=2),
    ErrorKind.TRANSIENT: Rule(
        Action.SUPPRESS, failures_setting="SUPPRESS_AFTER_CONSECUTIVE_FAILURES"
    ),
    ErrorKind.SENDER: Rule(Action.PAUSE_BATCH),
    ErrorKind.OTHER: Rule(Action.NOTHING),
}
# Suppression rules, most serious first. A failure counts towards its own kind's rule and
# every rule after it: two "blocked" and one "unreachable" are three failures in a row.
SUPPRESSION_ORDER = (ErrorKind.PERMANENT, ErrorKind.SOFT, ErrorKind.TRANSIENT)


def rule_for(code: int | None) -> Rule:
    """The rule for one provider error code."""
    known = PROVIDER_ERRORS.get(code) if code is not None else None
    if known is None:
        return RULES[ErrorKind.OTHER]
    rule = RULES[known.kind]
    if rule.action == Action.SUPPRESS and not known.suppress_as:
        # A hiccup such as Twilio's rate limit says nothing about the number.
        return RULES[ErrorKind.OTHER]
    return rule


def _codes_for(action: Action) -> frozenset[int]:
    return frozenset(code for code in PROVIDER_ERRORS if rule_for(code).action == action)


OPT_OUT_CODES = _codes_for(Action.OPT_OUT)
SUPPRESSION_CODES = _codes_for(Action.SUPPRESS)
SENDER_CODES = _codes_for(Action.PAUSE_BATCH)
ACTIONABLE_CODES = OPT_OUT_CODES | SUPPRESSION_CODES | SENDER_CODES


class Failure(NamedTuple):
    """A failure already recorded on its message."""

    phone: str
    code: int | None
    message: str
    batch_id: int | None


@dataclass(frozen=True)
class Block:
    """An opt-out or a suppression the rules decided on."""

    phone: str
    action: Action
    reason: str  # a Suppression.Reason value, or the opt-out's reason
    error_codes: list[int] = field(default_factory=list)
    detail: str = ""


@dataclass
class RulesOutcome:
    blocks: list[Block] = field(default_factory=list)
    paused_batch_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _PastFailure:
    at: datetime
    code: int
    message: str


# --- Entry points -------------------------------------------------------------------------


def apply_failure_rules(*, failures: Iterable[Failure]) -> RulesOutcome:
    """Block the numbers and pause the batches that these recorded failures call for.

    Idempotent: a number with an active block of the kind the rules want gets nothing new.
    """
    by_action: dict[Action, list[Failure]] = defaultdict(list)
    for failure in failures:
        by_action[rule_for(failure.code).action].append(failure)
    phones = {failure.phone for failure in by_action[Action.OPT_OUT] + by_action[Action.SUPPRESS]}
    outcome = RulesOutcome(blocks=create_blocks(blocks=decide_blocks(phones=phones)))
    sender_failures = by_action[Action.PAUSE_BATCH]
    if sender_failures:
        _alert(sender_failures)
        outcome.paused_batch_ids = pause_batches_failing_on_our_side(
            batch_ids={failure.batch_id for failure in sender_failures if failure.batch_id}
        )
    if outcome.blocks:
        kinds = Counter(
            block.reason if block.action == Action.SUPPRESS else "carrier opt-out"
            for block in outcome.blocks
        )
        logger.info("Failure rules blocked %s numbers: %s", len(outcome.blocks), dict(kinds))
    return outcome


def apply_failure_rules_on_commit(*, messages: models.QuerySet[Message]) -> None:
    """Once the current transaction commits, apply the rules to those of ``messages`` that
    failed. Robust: a fault in the rules is logged and never undoes or blocks recording
    what the provider said."""
    transaction.on_commit(lambda: apply_failure_rules(failures=_failures_of(messages)), robust=True)


def _failures_of(messages: models.QuerySet[Message]) -> list[Failure]:
    rows = (
        messages.filter(status__in=FAILED_STATUSES, error_code__in=ACTIONABLE_CODES)
        .order_by()
        .values_list("phone", "error_code", "error_message", "batch_id")
    )
    return [Failure(*row) for row in rows]


# --- Blocking numbers ---------------------------------------------------------------------


def decide_blocks(*, phones: Collection[str], now: datetime | None = None) -> list[Block]:
    """The opt-outs and suppressions these numbers' histories call for (none written).

    A handful of queries for the whole collection, whatever its size: pass chunks of a
    few thousand numbers at most.
    """
    phones = sorted(set(phones))
    if not phones:
        return []
    now = now or timezone.now()
    window_start = now - timedelta(days=settings.SUPPRESS_FAILURE_WINDOW_DAYS)
    opted_out, opt_out_lifted = _block_state(OptOut, phones)
    suppressed, suppression_lifted = _block_state(Suppression, phones)
    last_delivered = _last_delivered(phones)
    history = _past_failures(phones)
    blocks: list[Block] = []
    for phone in phones:
        failures = history.get(phone)
        if not failures:
            continue
        delivered_at = last_delivered.get(phone)
        if phone not in opted_out:
            since = _latest(delivered_at, opt_out_lifted.get(phone))
            evidence = [f for f in failures if f.code in OPT_OUT_CODES and _after(f.at, since)]
            if evidence:
                blocks.append(_opt_out(phone, evidence[-1]))
        if phone not in suppressed:
            since = _latest(delivered_at, suppression_lifted.get(phone))
            evidence = [f for f in failures if f.code in SUPPRESSION_CODES and _after(f.at, since)]
            block = _suppression(phone, evidence, window_start)
            if block is not None:
                blocks.append(block)
    return blocks


def create_blocks(*, blocks: Sequence[Block]) -> list[Block]:
    """Write the blocks; return those written. One that another process wrote meanwhile
    (the one-active-block-per-phone indexes refuse a second) is skipped."""
    # Carrier opt-outs are rare (once per number): the one opt-out service, number by number.
    opted_out = [
        block
        for block in blocks
        if block.action == Action.OPT_OUT
        and opt_out_phone(phone=block.phone, source=OptOut.Source.CARRIER, reason=block.reason)
    ]
    suppressions = [
        (
            block,
            Suppression(
                phone=block.phone,
                reason=block.reason,
                error_codes=block.error_codes,
                detail=block.detail,
            ),
        )
        for block in blocks
        if block.action == Action.SUPPRESS
    ]
    suppressed = _insert_suppressions(suppressions)
    metrics.count_suppressions(reasons=[block.reason for block in suppressed])
    return opted_out + suppressed


def _insert_suppressions(rows: list[tuple[Block, Suppression]]) -> list[Block]:
    if not rows:
        return []
    try:
        with transaction.atomic():
            Suppression.objects.bulk_create([row for _, row in rows])
        return [block for block, _ in rows]
    except IntegrityError:
        pass
    # A race with another worker: one row at a time, each in its own savepoint.
    created = []
    for block, row in rows:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            continue
        created.append(block)
    return created


def _block_state(
    model: type[ContactBlock], phones: list[str]
) -> tuple[set[str], dict[str, datetime]]:
    """Numbers with an active block of this type, and when each number's last one was lifted."""
    active: set[str] = set()
    last_lifted: dict[str, datetime] = {}
    rows = model.objects.filter(phone__in=phones).order_by().values_list("phone", "lifted_at")
    for phone, lifted_at in rows:
        if lifted_at is None:
            active.add(phone)
        else:
            last_lifted[phone] = max(last_lifted.get(phone, lifted_at), lifted_at)
    return active, last_lifted


def _last_delivered(phones: list[str]) -> dict[str, datetime]:
    rows = (
        Message.objects.filter(phone__in=phones, status=Status.DELIVERED)
        .order_by()
        .values("phone")
        .annotate(last=Max(Coalesce("delivered_at", "status_updated_at")))
        .values_list("phone", "last")
    )
    return dict(rows)


def _past_failures(phones: list[str]) -> dict[str, list[_PastFailure]]:
    """Each number's failures that say something about it, oldest first."""
    rows = (
        Message.objects.filter(
            phone__in=phones,
            status__in=FAILED_STATUSES,
            error_code__in=OPT_OUT_CODES | SUPPRESSION_CODES,
        )
        .annotate(finished_at=Coalesce("failed_at", "status_updated_at"))
        .order_by("phone", "finished_at", "id")
        .values_list("phone", "finished_at", "error_code", "error_message")
    )
    history: dict[str, list[_PastFailure]] = defaultdict(list)
    for phone, at, code, message in rows:
        history[phone].append(_PastFailure(at=at, code=code, message=message))
    return history


def _opt_out(phone: str, failure: _PastFailure) -> Block:
    reason = f"Twilio error {failure.code}: {describe_error(failure.code)}"
    return Block(
        phone=phone, action=Action.OPT_OUT, reason=reason[:255], error_codes=[failure.code]
    )


def _suppression(phone: str, evidence: list[_PastFailure], window_start: datetime) -> Block | None:
    for position, kind in enumerate(SUPPRESSION_ORDER):
        needed = RULES[kind].failures_needed()
        counted = [f for f in evidence if _position(f.code) <= position]
        if needed > 1:
            # One failure is proof enough whenever it happened; repeated ones must be recent.
            counted = [f for f in counted if f.at >= window_start]
        if counted and len(counted) >= needed:
            return Block(
                phone=phone,
                action=Action.SUPPRESS,
                reason=PROVIDER_ERRORS[counted[-1].code].suppress_as,
                error_codes=list(dict.fromkeys(f.code for f in counted)),
                detail=_detail(counted),
            )
    return None


def _position(code: int) -> int:
    return SUPPRESSION_ORDER.index(error_kind(code))


def _detail(failures: list[_PastFailure]) -> str:
    shown = failures[-DETAIL_MAX_FAILURES:]
    lines = [
        f"Suppressed automatically after {len(failures)} failed "
        f"{'message' if len(failures) == 1 else 'messages'}, none delivered since:"
    ]
    if len(failures) > len(shown):
        lines.append(f"(the last {len(shown)} of them)")
    for failure in shown:
        when = timezone.localtime(failure.at).strftime("%Y-%m-%d %H:%M %Z")
        line = f"{when}: error {failure.code}, {describe_error(failure.code)}"
        if failure.message:
            line += f". Twilio said: {failure.message}"
        lines.append(line)
    return "\n".join(lines)


def _latest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def _after(moment: datetime, since: datetime | None) -> bool:
    return since is None or moment > since


# --- Pausing batches on our own errors --------------------------------------------------


def _alert(failures: list[Failure]) -> None:
    by_batch: dict[int | None, Counter[int | None]] = defaultdict(Counter)
    for failure in failures:
        by_batch[failure.batch_id][failure.code] += 1
    for batch_id, codes in by_batch.items():
        logger.error(
            "Twilio refused %s message(s) of batch %s for a reason on our side, not the "
            "recipient's. Errors: %s. Check the sender's registration, the account and "
            "the content.",
            sum(codes.values()),
            batch_id,
            _describe_codes(codes),
        )


def pause_batches_failing_on_our_side(*, batch_ids: Collection[int]) -> list[int]:
    """Pause each of these batches whose own-fault failures pass both thresholds.

    Returns the batches paused by this call. Counting a huge batch's finished messages is
    bounded: only as many as the rate threshold needs are counted.
    """
    candidates = list(
        Batch.objects.filter(pk__in=batch_ids, is_paused=False).values_list("pk", flat=True)
    )
    if not candidates:
        return []
    minimum = settings.AUTO_PAUSE_SENDER_ERRORS_MIN
    rate = settings.AUTO_PAUSE_SENDER_ERROR_RATE
    codes_by_batch: dict[int, Counter[int]] = defaultdict(Counter)
    rows = (
        Message.objects.filter(
            batch_id__in=candidates, status__in=FAILED_STATUSES, error_code__in=SENDER_CODES
        )
        .order_by("batch_id", "error_code")  # a stable reason when counts tie
        .values("batch_id", "error_code")
        .annotate(count=Count("id"))
        .values_list("batch_id", "error_code", "count")
    )
    for batch_id, code, count in rows:
        codes_by_batch[batch_id][code] = count
    paused = []
    for batch_id, codes in sorted(codes_by_batch.items()):
        errors = sum(codes.values())
        if errors < minimum:
            continue
        # More finished messages than this would put the share under the rate.
        enough = int(errors / rate) + 2 if rate > 0 else None
        finished = (
            Message.objects.filter(batch_id=batch_id, status__in=REPORTED_STATUSES)
            .order_by()[:enough]
            .count()
        )
        if errors / max(finished, 1) < rate:
            continue
        reason = (
            f"Paused automatically: {errors:,} of {finished:,} finished messages "
            f"({errors / max(finished, 1):.0%}) failed for a reason on our side. Errors: "
            f"{_describe_codes(codes)}. Fix the cause, then resume sending."
        )
        if Batch.objects.filter(pk=batch_id, is_paused=False).update(
            is_paused=True, pause_reason=_shorten(reason, 255)
        ):
            logger.error("Batch %s: %s", batch_id, reason)
            paused.append(batch_id)
    return paused


def resume_batch(*, batch: Batch, by: object | None = None) -> bool:
    """Let a paused batch send again and wake its workers; False when it was not paused."""
    with transaction.atomic():
        resumed = Batch.objects.filter(pk=batch.pk, is_paused=True).update(
            is_paused=False, pause_reason=""
        )
        if resumed:
            dispatch_batch(batch_id=batch.pk)
    batch.refresh_from_db(fields=["is_paused", "pause_reason"])
    if resumed:
        logger.info("Batch %s resumed by %s", batch.pk, by or "the system")
    return bool(resumed)


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _describe_codes(codes: Counter[int] | Counter[int | None]) -> str:
    return "; ".join(
        f"{code} {describe_error(code)} ({count:,})" for code, count in codes.most_common()
    )
