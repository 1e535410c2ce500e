"""Wire formats shared by the routes: ErrorBody answers, login errors, dates and intervals.

Handlers raise ``ApiProblem``; the app's middleware turns it into the platform's ErrorBody
(genesys-api.md §3) whose ``contextId`` equals the ``ININ-Correlation-Id`` header.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

CORRELATION_HEADER = "ININ-Correlation-Id"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JSON = "application/json"

# Message templates from the spec's code catalogue (§3.2); %s filled by ApiProblem.of().
MESSAGES = {
    "bad.request": "The request could not be understood by the server due to malformed syntax.",
    "invalid.date": (
        "Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ"
    ),
    "invalid.value": "Value [%s] is not valid for field type [%s]. Allowable values are: %s",
    "invalid.query.param.value": (
        "Value [%s] is not valid for parameter [%s]. Allowable values are: %s"
    ),
    "not.found": "The requested resource was not found.",
    "bad.credentials": "Invalid login credentials.",
    "authentication.required": "No authentication bearer token specified in authorization header.",
    "invalid.property": "Value [%s] is not a valid property for object [%s]",
    "not.authorized": "You are not authorized to perform the requested action.",
    "missing.any.permissions": (
        "Unable to perform the requested action. You must have at least one of the following "
        "permissions assigned: %s"
    ),
    "too.many.requests.retry.after": (
        "Rate limit exceeded the maximum. Retry the request in [%s] seconds"
    ),
    "internal.server.error": (
        "The server encountered an unexpected condition which prevented it from fulfilling the "
        "request."
    ),
    # Not in the analytics catalogue; a gateway 502 most plausibly reads like this [INF].
    "bad.gateway": "The server received an invalid response from an upstream server.",
    "service.unavailable": (
        "Service Unavailable - The server is currently unavailable (because it is overloaded or "
        "down for maintenance)."
    ),
    "request.timeout": "The request timed out.",
}
STATUS_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "not.authorized",  # a route's own permissions are named by permissions.forbidden
    404: "not.found",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "request.timeout",
}


class ApiProblem(Exception):
    """An API error to answer with an ErrorBody; raised by handlers and middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra or {}

    @classmethod
    def of(cls, status: int, code: str, *params: str, **kwargs: Any) -> ApiProblem:
        """The catalogue's message for ``code``, with ``params`` filling its %s slots."""
        template = MESSAGES[code]
        return cls(status, code, template % params if params else template, **kwargs)

    @classmethod
    def for_status(cls, status: int, retry_after: str | None = None) -> ApiProblem:
        """The platform's usual answer for a bare status (used by injected faults)."""
        code = STATUS_CODES.get(status, "internal.server.error" if status >= 500 else "bad.request")
        if code == "too.many.requests.retry.after":
            return cls.of(status, code, retry_after or "1")
        return cls.of(status, code)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def error_response(problem: ApiProblem, correlation_id: str) -> web.Response:
    """The ErrorBody envelope: message, code, status, contextId, details, errors (+ extras)."""
    body: dict[str, Any] = {
        "message": problem.message,
        "code": problem.code,
        "status": problem.status,
        **problem.extra,
        "contextId": correlation_id,
        "details": [],
        "errors": [],
    }
    return json_response(orjson.dumps(body), problem.status, problem.headers)


def login_error(status: int, error: str, description: str) -> web.Response:
    """The login service's own error shape: error, description, error_description (§2.3)."""
    body = {"error": error, "description": description, "error_description": description}
    return json_response(orjson.dumps(body), status)


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def format_instant(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss.SSSZ`` in UTC, as every Genesys timestamp."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; a missing offset means UTC. Raises ApiProblem invalid.date."""
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise ApiProblem.of(400, "invalid.date") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_interval(value: Any) -> tuple[int, int]:
    """``start/end`` as epoch milliseconds; 400 unless both parse and start < end."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise ApiProblem(400, "bad.request", "The interval must be an ISO-8601 'start/end' string.")
    start_text, end_text = value.split("/")
    start, end = parse_instant(start_text), parse_instant(end_text)
    if start >= end:
        raise ApiProblem(400, "bad.request", "The interval's start must be before its end.")
    return to_ms(start), to_ms(end)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
