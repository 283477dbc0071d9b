"""The fake OpenAI, exercised with the real openai SDK."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import openai
import pytest
import requests

from smsadmin.fakes.openai import DEFAULT_REPLY, FakeOpenAI, openai_client_for

MODEL = "gpt-4.1-mini"
INSTRUCTIONS = "You write one short, warm good-morning text message for a garden club."
PROMPT = "Today is Tuesday. Mention the tomato seedlings."


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai_client_for(fake, timeout=5)


def _create(client: openai.OpenAI, **fields):
    fields.setdefault("model", MODEL)
    fields.setdefault("instructions", INSTRUCTIONS)
    fields.setdefault("input", PROMPT)
    return client.responses.create(**fields)


# --- answers ----------------------------------------------------------------------------


def test_scripted_replies_come_back_as_output_text_in_order(fake, client) -> None:
    fake.queue_replies("Good morning, gardeners!", "Water the seedlings today.")

    first, second, third = _create(client), _create(client), _create(client)

    assert first.output_text == "Good morning, gardeners!"
    assert second.output_text == "Water the seedlings today."
    assert third.output_text == DEFAULT_REPLY  # the queue ran out
    assert [request.status for request in fake.requests] == [200, 200, 200]


def test_a_response_looks_like_openais(fake, client) -> None:
    response = _create(client)

    assert re.fullmatch(r"resp_[0-9a-f]{32}", response.id)
    assert (response.object, response.status, response.model) == ("response", "completed", MODEL)
    assert response.instructions == INSTRUCTIONS
    assert abs(response.created_at - time.time()) < 5
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message.id)
    [content] = message.content
    assert content.type == "output_text"
    assert content.annotations == []
    usage = response.usage
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_the_prompt_is_recorded_without_the_api_key(fake, client) -> None:
    _create(client, temperature=0.7)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/responses")
    assert request.body["model"] == MODEL
    assert request.body["temperature"] == 0.7
    assert request.instructions == INSTRUCTIONS
    assert request.input_text == PROMPT
    assert request.prompt == f"{INSTRUCTIONS}\n\n{PROMPT}"
    assert request.headers["authorization"] == "Bearer ***"
    assert fake.api_key not in repr(request)


def test_input_given_as_message_items_is_recorded_as_text(fake, client) -> None:
    _create(
        client,
        instructions=None,
        input=[
            {"role": "developer", "content": "Keep it under 160 characters."},
            {"role": "user", "content": [{"type": "input_text", "text": PROMPT}]},
        ],
    )

    [request] = fake.requests
    assert request.instructions == ""
    assert request.prompt == f"Keep it under 160 characters.\n{PROMPT}"


def test_a_refusal_is_reported_in_the_output_content(fake, client) -> None:
    fake.queue_refusal("I can't write that message.")

    response = _create(client)

    [content] = response.output[0].content
    assert content.type == "refusal"
    assert content.refusal == "I can't write that message."
    assert response.output_text == ""


def test_models_are_listed(fake, client) -> None:
    assert MODEL in [model.id for model in client.models.list()]


# --- failures ---------------------------------------------------------------------------


def test_a_wrong_api_key_is_an_authentication_error(fake) -> None:
    client = openai_client_for(fake, api_key="sk-wrong-key-1234")

    with pytest.raises(openai.AuthenticationError) as caught:
        _create(client)

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-1234" not in caught.value.message  # OpenAI masks the key too
    assert [request.status for request in fake.requests] == [401]


def test_a_missing_api_key_is_refused_in_openais_error_shape(fake) -> None:
    answer = requests.post(
        f"{fake.base_url}/responses", json={"model": MODEL, "input": "Hi"}, timeout=5
    )

    assert answer.status_code == 401
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


def test_a_rate_limit_is_a_rate_limit_error_with_retry_after(fake, client) -> None:
    fake.fail_next(1, "rate_limit")

    with pytest.raises(openai.RateLimitError) as caught:
        _create(client)

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "1"
    assert fake.requests[0].status == 429


def test_the_sdk_retries_rate_limits_to_success(fake) -> None:
    fake.fail_next(2, "rate_limit")
    fake.set_retry_after(0.01)
    fake.queue_replies("Third time lucky.")
    client = openai_client_for(fake, max_retries=2, timeout=5)

    response = _create(client)

    assert response.output_text == "Third time lucky."
    assert [request.status for request in fake.requests] == [429, 429, 200]


def test_a_server_error_is_an_internal_server_error(fake, client) -> None:
    fake.fail_next(1, "server_error")

    with pytest.raises(openai.InternalServerError):
        _create(client)

    assert fake.requests[0].status == 500
    assert _create(client).output_text == DEFAULT_REPLY  # only the next request failed


def test_a_stall_longer_than_the_timeout_is_a_timeout_error(fake) -> None:
    fake.fail_next(1, "stall")
    fake.set_stall_seconds(1.0)
    client = openai_client_for(fake, timeout=0.3)

    with pytest.raises(openai.APITimeoutError):
        _create(client)

    [request] = fake.requests
    assert (request.failure, request.delay_seconds) == ("stall", 1.0)
    assert request.input_text == PROMPT  # OpenAI did receive the prompt


def test_latency_delays_every_answer(fake, client) -> None:
    fake.set_latency(0.05)

    started = time.monotonic()
    response = _create(client)

    assert response.output_text == DEFAULT_REPLY
    assert fake.requests[0].delay_seconds == 0.05
    assert time.monotonic() - started >= 0.05


def test_reset_forgets_requests_and_scripted_behaviour(fake, client) -> None:
    fake.queue_replies("Never sent.")
    fake.fail_next(1, "server_error")
    fake.reset()

    assert _create(client).output_text == DEFAULT_REPLY
    assert [request.status for request in fake.requests] == [200]
