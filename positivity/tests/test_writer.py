"""Writing a day's message: the AI's text when it passes the checks, else the fallback,
with every attempt and rejection recorded. The real openai SDK talks to the fake."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.db import connection

from positivity.fallback import load_fallback_library
from positivity.models import DailyMessage
from positivity.writer import write_daily_message

pytestmark = pytest.mark.django_db
DAY = date(2026, 12, 2)
GOOD = "Small steps still move you forward. Be proud of how far you have come."
SECOND_GOOD = "Your kindness today may be the bright spot in someone's week."
LAST_WEEK = "Every sunrise is a fresh start. Take a deep breath and enjoy today."
Source = DailyMessage.Source


def stored(day: date = DAY) -> DailyMessage:
    return DailyMessage.objects.get(date=day)


def outcomes(message: DailyMessage) -> list[tuple[str, str]]:
    return [
        (attempt["source"], attempt.get("rejection") or ("error" if "error" in attempt else "ok"))
        for attempt in message.attempts
    ]


def test_the_ai_text_that_passes_the_checks_is_the_day_s_message(fake_openai, settings):
    fake_openai.queue_replies(GOOD)

    message = write_daily_message(DAY)

    assert (message.text, message.source, message.model) == (GOOD, Source.AI, "gpt-4.1-mini")
    assert outcomes(message) == [("ai", "ok")]
    (request,) = fake_openai.requests
    assert request.path == "/v1/responses"
    assert request.body["model"] == settings.OPENAI_MODEL
    assert "ONE short, warm, positive message" in request.instructions
    assert "Wednesday 02 December 2026" in request.input_text


def test_the_prompt_lists_recent_messages_so_the_ai_does_not_repeat_them(fake_openai):
    DailyMessage.objects.create(date=DAY - timedelta(days=3), text=LAST_WEEK, source=Source.AI)
    DailyMessage.objects.create(date=DAY - timedelta(days=200), text="Too old.", source=Source.AI)
    fake_openai.queue_replies(GOOD)

    write_daily_message(DAY)

    prompt = fake_openai.requests[0].input_text
    assert f"- {LAST_WEEK}" in prompt
    assert "Too old." not in prompt


def test_writing_a_day_again_asks_nobody_and_changes_nothing(fake_openai):
    fake_openai.queue_replies(GOOD, SECOND_GOOD)
    first = write_daily_message(DAY)

    second = write_daily_message(DAY)

    assert second.pk == first.pk
    assert stored().text == GOOD
    assert len(fake_openai.requests) == 1
    assert DailyMessage.objects.count() == 1


def test_a_near_duplicate_of_last_week_is_rejected_and_the_ai_asked_again(fake_openai):
    DailyMessage.objects.create(date=DAY - timedelta(days=7), text=LAST_WEEK, source=Source.AI)
    near_duplicate = "Every sunrise is a fresh start! Take a deep breath and enjoy your day."
    fake_openai.queue_replies(near_duplicate, GOOD)

    message = write_daily_message(DAY)

    assert (message.text, message.source) == (GOOD, Source.AI)
    assert outcomes(message) == [("ai", "too_similar"), ("ai", "ok")]
    assert message.attempts[0]["text"] == near_duplicate
    assert "similar to a recent one" in fake_openai.requests[1].input_text


@pytest.mark.parametrize(
    ("reply", "rejection"),
    [
        ("You matter. " * 20, "too_long"),
        ("Feeling low? Read our tips at https://example.org/joy and smile.", "link"),
        ("Need a chat? Call 415 555 0123 any time, we are here for you.", "phone_number"),
        ("Sending you sunshine today ☀️ and always!", "not_gsm"),
        ("   ", "empty"),
    ],
)
def test_a_text_that_fails_a_check_is_recorded_and_replaced(fake_openai, reply, rejection):
    fake_openai.queue_replies(reply, GOOD)

    message = write_daily_message(DAY)

    assert message.text == GOOD
    assert outcomes(message) == [("ai", rejection), ("ai", "ok")]


def test_two_segments_are_accepted_when_the_setting_allows_them(fake_openai, settings):
    settings.DAILY_MESSAGE_MAX_SEGMENTS = 2
    two_segments = ("You are stronger than you think and kinder than you know. " * 3).strip()
    fake_openai.queue_replies(two_segments)

    assert write_daily_message(DAY).text == two_segments


def test_when_every_attempt_fails_the_checks_the_fallback_is_used(fake_openai, settings):
    settings.DAILY_MESSAGE_MAX_ATTEMPTS = 3
    fake_openai.queue_replies("Visit www.joy.com", "Call +1 415 555 0100", "x" * 200, GOOD)

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert message.text in load_fallback_library()
    assert outcomes(message) == [
        ("ai", "link"),
        ("ai", "phone_number"),
        ("ai", "too_long"),
        ("fallback", "ok"),
    ]
    assert len(fake_openai.requests) == 3


def test_without_an_api_key_the_fallback_is_used_and_nobody_is_asked(fake_openai, settings):
    settings.OPENAI_API_KEY = ""

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert message.attempts[0]["error"] == "No OPENAI_API_KEY is set."
    assert fake_openai.requests == []


def test_an_ai_server_error_falls_back_after_the_sdk_retries(fake_openai, settings):
    settings.OPENAI_MAX_RETRIES = 2
    fake_openai.fail_next(3, "server_error")

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert "OpenAI answered 500" in message.attempts[0]["error"]
    assert [request.status for request in fake_openai.requests] == [500, 500, 500]


def test_an_unreachable_ai_falls_back(fake_openai, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert message.attempts[0]["error"].startswith("OpenAI could not be reached")


def test_an_ai_slower_than_the_timeout_falls_back(fake_openai, settings):
    settings.OPENAI_TIMEOUT = 0.3
    fake_openai.set_stall_seconds(2)
    fake_openai.fail_next(1, "stall")

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert message.attempts[0]["error"] == "OpenAI did not answer within 0.3 s."


def test_a_rate_limited_ai_falls_back_once_its_retries_are_spent(fake_openai, settings):
    settings.OPENAI_MAX_RETRIES = 1
    fake_openai.set_retry_after(0)
    fake_openai.fail_next(2, "rate_limit")

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert "OpenAI answered 429" in message.attempts[0]["error"]
    assert len(fake_openai.requests) == 2


def test_a_single_rate_limit_is_retried_and_the_ai_text_used(fake_openai, settings):
    settings.OPENAI_MAX_RETRIES = 1
    fake_openai.set_retry_after(0)
    fake_openai.fail_next(1, "rate_limit")
    fake_openai.queue_replies(GOOD)

    message = write_daily_message(DAY)

    assert (message.text, message.source) == (GOOD, Source.AI)
    assert [request.status for request in fake_openai.requests] == [429, 200]


def test_a_refusal_falls_back_without_asking_again(fake_openai):
    fake_openai.queue_refusal("I can't help with that.")

    message = write_daily_message(DAY)

    assert message.source == Source.FALLBACK
    assert message.attempts[0]["error"] == "The model refused: I can't help with that."
    assert len(fake_openai.requests) == 1


def test_quotes_and_spaces_around_the_ai_text_are_removed(fake_openai):
    fake_openai.queue_replies(f'  "{GOOD}"\n')

    assert write_daily_message(DAY).text == GOOD


def test_the_fallback_never_repeats_within_the_library_s_length(settings):
    settings.OPENAI_API_KEY = ""
    settings.DAILY_MESSAGE_REPEAT_WINDOW_DAYS = 7  # the cycle is the point, not similarity
    library = load_fallback_library()

    texts = [
        write_daily_message(DAY + timedelta(days=offset)).text for offset in range(len(library))
    ]

    assert len(set(texts)) == len(library)
    assert set(texts) == set(library)


def test_the_fallback_skips_a_library_message_the_ai_used_lately(settings):
    settings.OPENAI_API_KEY = ""
    library = load_fallback_library()
    natural_choice = library[DAY.toordinal() % len(library)]
    DailyMessage.objects.create(date=DAY - timedelta(days=5), text=natural_choice, source=Source.AI)

    message = write_daily_message(DAY)

    assert message.text != natural_choice
    assert message.text in library


@pytest.mark.django_db(transaction=True)
def test_two_writers_at_once_ask_the_ai_once_and_store_one_message(fake_openai):
    fake_openai.set_latency(0.3)
    fake_openai.queue_replies(GOOD, SECOND_GOOD)
    results: list[DailyMessage | None] = []

    def write() -> None:
        try:
            results.append(write_daily_message(DAY))
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert DailyMessage.objects.count() == 1
    assert stored().text == GOOD
    assert len(fake_openai.requests) == 1
    # A writer that finds the lock taken says so (None) instead of waiting.
    assert all(result is None or result.pk == stored().pk for result in results)


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_waits_gets_the_message_another_process_is_writing(fake_openai):
    fake_openai.set_latency(0.5)
    fake_openai.queue_replies(GOOD, SECOND_GOOD)
    results: list[DailyMessage | None] = []
    started = threading.Event()

    def write_slowly() -> None:
        try:
            started.set()
            results.append(write_daily_message(DAY))
        finally:
            connection.close()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    started.wait()
    while not fake_openai.requests:  # the first writer holds the lock and asks the AI
        threading.Event().wait(0.01)

    waited = write_daily_message(DAY, wait_seconds=10)
    writer.join()

    assert waited is not None
    assert waited.text == GOOD
    assert results[0].pk == waited.pk
    assert len(fake_openai.requests) == 1
