"""The fake OpenAI, exercised with the real openai SDK."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from smsadmin.fakes.openai import DEFAULT_API_KEY, DEFAULT_REPLY, FakeOpenAI, openai_client_for

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


def _control(fake: FakeOpenAI, method: str, action: str, **kwargs) -> requests.Response:
    """A call to the control API, which sits beside ``/v1`` (no key needed)."""
    base = fake.base_url.removesuffix("/v1")
    return requests.request(method, f"{base}/_fake/{action}", timeout=5, **kwargs)


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


# --- the control API --------------------------------------------------------------------


def test_replies_and_a_refusal_queued_over_http_are_answered_in_order(fake, client) -> None:
    queued = _control(
        fake, "POST", "replies", json={"replies": ["First.", "Second."], "refusal": "No."}
    )

    texts = [_create(client).output[0].content[0] for _ in range(4)]

    assert queued.status_code == 200
    assert queued.json()["queued_replies"] == 3
    assert [(text.type, getattr(text, "text", None) or text.refusal) for text in texts] == [
        ("output_text", "First."),
        ("output_text", "Second."),
        ("refusal", "No."),
        ("output_text", DEFAULT_REPLY),
    ]


def test_failures_and_settings_set_over_http_are_what_the_sdk_meets(fake, client) -> None:
    settings = _control(
        fake,
        "POST",
        "settings",
        json={"latency_seconds": 0.01, "stall_seconds": 0.02, "retry_after_seconds": 3},
    )
    failures = _control(fake, "POST", "failures", json={"count": 2, "kind": "rate_limit"})

    with pytest.raises(openai.RateLimitError) as caught:
        _create(client)

    assert settings.status_code == failures.status_code == 200
    assert failures.json()["queued_failures"] == 2
    assert caught.value.response.headers["retry-after"] == "3"
    assert fake.summary() | {"requests": None} == {
        "status": "ok",
        "requests": None,
        "queued_replies": 0,
        "queued_failures": 1,
        "latency_seconds": 0.01,
        "stall_seconds": 0.02,
        "retry_after_seconds": 3,
    }
    assert fake.requests[0].delay_seconds == 0.01


def test_a_stall_set_over_http_stalls_the_next_request(fake) -> None:
    _control(fake, "POST", "settings", json={"stall_seconds": 1.0})
    _control(fake, "POST", "failures", json={"kind": "stall"})  # count defaults to 1

    with pytest.raises(openai.APITimeoutError):
        _create(openai_client_for(fake, timeout=0.3))

    assert [(r.failure, r.delay_seconds) for r in fake.requests] == [("stall", 1.0)]


def test_the_request_log_over_http_shows_the_prompt_and_never_the_key(fake, client) -> None:
    fake.fail_next(1, "server_error")
    with pytest.raises(openai.InternalServerError):
        _create(client)
    _create(client)

    answer = _control(fake, "GET", "requests")

    assert answer.status_code == 200
    assert answer.json()["requests"] == [
        {
            "method": "POST",
            "path": "/v1/responses",
            "instructions": INSTRUCTIONS,
            "input_text": PROMPT,
            "status": status,
            "failure": failure,
            "delay_seconds": 0.0,
        }
        for status, failure in [(500, "server_error"), (200, None)]
    ]
    assert fake.api_key not in answer.text


def test_control_calls_are_not_in_the_request_log(fake, client) -> None:
    _create(client)
    for method, action, body in [
        ("GET", "health", None),
        ("GET", "requests", None),
        ("POST", "replies", {"replies": ["Hi"]}),
        ("POST", "settings", {"latency_seconds": 0}),
        ("POST", "failures", {"count": 0, "kind": "server_error"}),
        ("GET", "nowhere", None),
    ]:
        _control(fake, method, action, json=body)

    assert [request.path for request in fake.requests] == ["/v1/responses"]
    assert _control(fake, "GET", "health").json()["requests"] == 1


def test_reset_over_http_forgets_requests_and_scripted_behaviour(fake, client) -> None:
    _create(client)
    fake.queue_replies("Never sent.")
    fake.fail_next(1, "server_error")
    fake.set_latency(0.5)

    reset = _control(fake, "POST", "reset")

    assert reset.status_code == 200
    assert reset.json() == {
        "status": "ok",
        "requests": 0,
        "queued_replies": 0,
        "queued_failures": 0,
        "latency_seconds": 0.0,
        "stall_seconds": 30.0,
        "retry_after_seconds": 1.0,
    }
    assert _create(client).output_text == DEFAULT_REPLY


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("replies", b"{not json"),
        ("replies", b"[" * 100_000),  # too deeply nested for the parser
        ("replies", b'["a list, not an object"]'),
        ("replies", b"{}"),
        ("replies", b'{"replies": "not a list"}'),
        ("replies", b'{"replies": ["ok", 3]}'),
        ("replies", b'{"refusal": null}'),
        ("replies", b'{"replies": ["ok"], "refusal": false}'),
        ("replies", b'{"replies": ["ok"], "tone": "cheerful"}'),
        ("failures", b'{"count": 1}'),
        ("failures", b'{"count": 1, "kind": "flood"}'),
        ("failures", b'{"count": -1, "kind": "stall"}'),
        ("failures", b'{"count": true, "kind": "stall"}'),
        ("failures", b'{"count": 1.5, "kind": "stall"}'),
        ("failures", b'{"count": 1000000000, "kind": "stall"}'),
        ("settings", b'{"latency_seconds": -1}'),
        ("settings", b'{"latency_seconds": "1"}'),
        ("settings", b'{"latency_seconds": true}'),
        ("settings", b'{"stall_seconds": NaN}'),
        ("settings", b'{"stall_seconds": Infinity}'),
        ("settings", b'{"retry_after_seconds": 1' + b"0" * 400 + b"}"),
        ("settings", b'{"latency_seconds": 1, "retry_after_seconds": -1}'),
        ("settings", b'{"timeout_seconds": 1}'),
    ],
)
def test_an_invalid_control_request_is_a_400_that_changes_nothing(fake, action, body) -> None:
    before = fake.summary()

    answer = _control(fake, "POST", action, data=body)

    assert answer.status_code == 400
    assert answer.json()["error"].endswith(".")  # a sentence, not a traceback
    assert fake.summary() == before


def test_unknown_control_paths_are_404_and_wrong_methods_405(fake) -> None:
    unknown = _control(fake, "GET", "everything")
    wrong_method = _control(fake, "GET", "reset")

    assert (unknown.status_code, wrong_method.status_code) == (404, 405)
    assert "error" in unknown.json()
    assert "error" in wrong_method.json()


# --- running it -------------------------------------------------------------------------


def _run_fake(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "smsadmin.fakes.openai", *arguments],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runs_as_a_process_that_the_sdk_can_call_and_stops_on_sigterm() -> None:
    with _run_fake("--port", "0", "--reply", "Hello from the process.") as process:
        try:
            line = process.stdout.readline()
            listening = re.fullmatch(r"Fake OpenAI listening on (\S+/v1) \(key (\S+)\)\n", line)
            assert listening, line
            base_url, api_key = listening.groups()
            client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=5, max_retries=0)
            response = _create(client)
            log = requests.get(base_url.removesuffix("/v1") + "/_fake/requests", timeout=5)
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=10)
        errors = process.stderr.read()

    assert api_key == DEFAULT_API_KEY
    assert response.output_text == "Hello from the process."
    assert [request["input_text"] for request in log.json()["requests"]] == [PROMPT]
    assert (exit_code, errors) == (0, "")


@pytest.mark.parametrize(
    "arguments",
    [
        ["--port", "not-a-port"],
        ["--port", "70000"],
        ["--latency", "-1"],
        ["--latency", "soon"],
        ["--api-key", ""],
        ["--make-it-rain"],
    ],
)
def test_bad_arguments_exit_2_with_one_line_on_stderr(arguments) -> None:
    with _run_fake(*arguments) as process:
        output, errors = process.communicate(timeout=10)

    assert process.returncode == 2
    assert output == ""
    assert errors.startswith("fake openai: ")
    assert errors.count("\n") == 1
