"""The fake Twilio's request handling: the Messages API and the control API."""

from __future__ import annotations

import asyncio
import base64
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from delivery.segments import analyze
from smsadmin.fakes.http import Request, Response, json_response
from smsadmin.fakes.twilio_delivery import Deliveries
from smsadmin.fakes.twilio_rules import InvalidRules
from smsadmin.fakes.twilio_state import RecordedRequest, TwilioState
from smsadmin.fakes.twilio_wire import (
    ALPHANUMERIC_SENDER_ID,
    API_VERSION,
    E164,
    MAX_BODY_CHARACTERS,
    MESSAGING_SERVICE_SID,
    SHORT_CODE,
    FakeMessage,
    error_body,
    error_message,
)

CONTROL_PREFIX = "/_fake/"
MESSAGES_PATH = re.compile(rf"/{API_VERSION}/Accounts/([^/]+)/Messages\.json")
MESSAGE_PATH = re.compile(rf"/{API_VERSION}/Accounts/([^/]+)/Messages/([^/]+)\.json")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_FILTERS = ("DateSent", "DateSent<", "DateSent>")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        response = json_response(self.status, error_body(self.status, self.code, self.message))
        if self.status == 401:
            response.headers.append(("WWW-Authenticate", 'Basic realm="Twilio API"'))
        return response


class TwilioApi:
    def __init__(
        self,
        state: TwilioState,
        *,
        account_sid: str,
        auth_token: str,
        api_keys: Mapping[str, str],
    ) -> None:
        self._state = state
        self.account_sid = account_sid
        self._credentials = {account_sid: auth_token, **api_keys}
        # The SDK always sends the same header: one dictionary lookup recognises it.
        self._authorizations = {
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(): user
            for user, password in self._credentials.items()
        }
        self._deliveries = Deliveries(state, auth_token=auth_token)

    async def close(self) -> None:
        await self._deliveries.close()

    async def handle(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        if match := MESSAGES_PATH.fullmatch(request.path):
            return await self._api_request(request, match.group(1), None)
        if match := MESSAGE_PATH.fullmatch(request.path):
            return await self._api_request(request, match.group(1), match.group(2))
        return ApiError(404, 20404, error_message(20404, path=request.path)).response()

    # --- the Messages API -------------------------------------------------------------
    async def _api_request(
        self, request: Request, account_sid: str, message_sid: str | None
    ) -> Response:
        received_at = time.time()
        form_items = request.form_items() if request.method == "POST" else []
        form = dict(form_items)
        query = request.query_params()
        presented_user, user = self._authenticate(request)
        sid = None
        try:
            if user is None or account_sid != self.account_sid:
                raise ApiError(401, 20003, error_message(20003))
            allowed = ("GET", "POST") if message_sid is None else ("GET",)
            if request.method not in allowed:
                raise ApiError(405, 20004, error_message(20004))
            is_creation = message_sid is None and request.method == "POST"
            decision = self._state.decide(is_creation=is_creation)
            if decision.delay_seconds:
                await asyncio.sleep(decision.delay_seconds)
            if decision.injected_status == 429:
                raise ApiError(429, 20429, error_message(20429))
            if decision.injected_status == 500:
                if decision.creates_message_first and is_creation:
                    sid = self._create(form_items, form)[1]
                raise ApiError(500, 20500, error_message(20500))
            if message_sid is not None:
                response, sid = self._fetch(request.path, message_sid), message_sid
            elif is_creation:
                response, sid = self._create(form_items, form)
            else:
                response = self._list(request.path, query)
            error_code = None
        except ApiError as error:
            response, error_code = error.response(), error.code
        self._state.record_request(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=query,
                form=form,
                auth_user=presented_user,
                received_at=received_at,
                status=response.status,
                sid=sid,
                error_code=error_code,
            )
        )
        return response

    def _authenticate(self, request: Request) -> tuple[str | None, str | None]:
        """The Basic-auth user name presented, and the same again if the password fits."""
        header = request.headers.get("authorization", "")
        user = self._authorizations.get(header)
        if user is not None:
            return user, user
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None, None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            return None, None
        presented, _, password = decoded.partition(":")
        expected = self._credentials.get(presented)
        is_valid = expected is not None and hmac.compare_digest(expected, password)
        return presented, presented if is_valid else None

    def _create(
        self, form_items: list[tuple[str, str]], form: dict[str, str]
    ) -> tuple[Response, str]:
        to = form.get("To", "")
        sender = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        num_media = sum(1 for name, _ in form_items if name == "MediaUrl")
        if not to:
            raise ApiError(400, 21604, error_message(21604))
        if not E164.fullmatch(to):
            raise ApiError(400, 21211, error_message(21211, to=to))
        if not sender and not service:
            raise ApiError(400, 21603, error_message(21603))
        if sender and not (
            E164.fullmatch(sender)
            or SHORT_CODE.fullmatch(sender)
            or ALPHANUMERIC_SENDER_ID.fullmatch(sender)
        ):
            raise ApiError(400, 21212, error_message(21212, from_=sender))
        if service and not MESSAGING_SERVICE_SID.fullmatch(service):
            raise ApiError(400, 21701, error_message(21701, messaging_service_sid=service))
        callback = form.get("StatusCallback", "")
        if callback and not callback.startswith(("http://", "https://")):
            raise ApiError(400, 21609, error_message(21609, url=callback))
        if not body and not num_media and not form.get("ContentSid"):
            raise ApiError(400, 21602, error_message(21602))
        if len(body) > MAX_BODY_CHARACTERS:
            raise ApiError(400, 21617, error_message(21617))
        creation_failure, delivery_failure = self._state.failures_for(to)
        if creation_failure is not None:
            message = creation_failure.message or error_message(
                creation_failure.code, to=to, from_=sender
            )
            raise ApiError(creation_failure.status, creation_failure.code, message)

        now = time.time()
        segments = analyze(body).segments or (1 if num_media else 0)
        message = FakeMessage(
            sid=self._state.new_sid("SM"),
            account_sid=self.account_sid,
            to=to,
            from_=sender or None,
            messaging_service_sid=service or None,
            body=body,
            status="accepted" if service else "queued",
            segments=segments,
            num_media=num_media,
            status_callback=callback or None,
            date_created=now,
            date_updated=now,
        )
        self._state.add_message(message)
        self._deliveries.start(message, delivery_failure)
        return json_response(201, message.to_json()), message.sid

    def _fetch(self, path: str, message_sid: str) -> Response:
        payload = self._state.message_json(message_sid)
        if payload is None:
            raise ApiError(404, 20404, error_message(20404, path=path))
        return json_response(200, payload)

    def _list(self, path: str, query: dict[str, str]) -> Response:
        filters = [(name, query[name]) for name in ("To", "From", *DATE_FILTERS) if name in query]
        checks = [_date_check(name, query[name]) for name in DATE_FILTERS if name in query]
        sender = query.get("From")

        def matches(message: FakeMessage) -> bool:
            if sender is not None and message.from_ != sender:
                return False
            return all(check(message.date_sent) for check in checks)

        page_size = _integer_parameter(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = _integer_parameter(query, "Page", 0, 0, 1_000_000)
        found = self._state.find_messages(query.get("To"), matches)
        start = page * page_size
        token = query.get("PageToken", "")
        if token.startswith("PA"):
            # Twilio's token names the last record of the previous page, so paging stays
            # put while newer messages arrive.
            after = next((i for i, m in enumerate(found) if m.sid == token[2:]), None)
            if after is not None:
                start = after + 1
        records = found[start : start + page_size]

        def page_uri(number: int, page_token: str | None = None) -> str:
            parameters = [*filters, ("PageSize", page_size), ("Page", number)]
            if page_token:
                parameters.append(("PageToken", page_token))
            return f"{path}?{urlencode(parameters)}"

        has_next = start + page_size < len(found)
        return json_response(
            200,
            {
                "end": start + max(len(records) - 1, 0),
                "first_page_uri": page_uri(0),
                "messages": [message.to_json() for message in records],
                "next_page_uri": page_uri(page + 1, "PA" + records[-1].sid) if has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": page_uri(page, token or None),
            },
        )

    # --- the control API --------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix(CONTROL_PREFIX).rstrip("/")
        to = request.query_params().get("To")
        method = "GET" if request.method == "HEAD" else request.method
        if (method, action) == ("GET", "health"):
            return json_response(200, self._state.summary())
        if (method, action) == ("GET", "requests"):
            records = self._state.requests(to)
            return json_response(200, {"requests": [r.to_json() for r in records]})
        if (method, action) == ("GET", "messages"):
            messages = self._state.find_messages(to)
            return json_response(200, {"messages": [m.to_json() for m in messages]})
        if (method, action) == ("GET", "callbacks"):
            attempts = self._state.callbacks()
            return json_response(200, {"callbacks": [a.to_json() for a in attempts]})
        if (method, action) == ("GET", "rules"):
            return json_response(200, self._state.rules_json())
        if (method, action) == ("POST", "rules"):
            try:
                changes = request.json()
                if not isinstance(changes, dict):
                    raise InvalidRules("send a JSON object of rules")
                return json_response(200, self._state.update_rules(changes))
            except (ValueError, InvalidRules) as error:
                return json_response(400, {"error": str(error)})
        if (method, action) == ("POST", "reset"):
            self._state.reset()
            return json_response(200, {"status": "reset"})
        known = {"health", "requests", "messages", "callbacks", "rules", "reset"}
        if action in known:
            return json_response(405, {"error": f"{method} not allowed on {request.path}"})
        return json_response(404, {"error": f"no control endpoint {request.path}"})


def _integer_parameter(
    query: Mapping[str, str], name: str, default: int, low: int, high: int
) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ApiError(400, 20001, f"Invalid {name}: must be between {low} and {high}")
    return int(value)


def _date_check(name: str, value: str) -> Callable[[float | None], bool]:
    """A test on ``date_sent`` for ``DateSent`` (on), ``DateSent<`` (on or before) or
    ``DateSent>`` (on or after): by day for ``YYYY-MM-DD``, else to the second."""
    try:
        if DATE_ONLY.fullmatch(value):
            day = date.fromisoformat(value).toordinal()
            return lambda sent: sent is not None and _compare(name, _day(sent), day)
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ApiError(400, 20001, f"Invalid {name}: {value}") from error
    second = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    # Twilio keeps whole seconds, so a message sent at 12:00:00.7 was sent "at 12:00:00".
    return lambda sent: sent is not None and _compare(name, int(sent), second)


def _day(timestamp: float) -> int:
    return datetime.fromtimestamp(timestamp, UTC).date().toordinal()


def _compare(name: str, value: int, bound: int) -> bool:
    if name == "DateSent>":
        return value >= bound
    if name == "DateSent<":
        return value <= bound
    return value == bound
