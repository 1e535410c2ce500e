"""The one HTTP client: a send path layered as retry -> auth -> pool + limiter -> one request.

This is the only module that sees aiohttp; its exceptions are mapped onto ``exporter.errors`` at
``_send_once``. Every request shares one ClientSession, one token, one bounded pool and one rate
limiter. Parsing happens inside the retry loop, so a truncated or garbled body is retried like a
dropped connection.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from exporter.client.auth import Token, TokenProvider, explain_token_rejection
from exporter.client.ratelimit import URGENT, RateLimiter
from exporter.client.retry import RetryPolicy, parse_retry_after
from exporter.config import Connection, HttpSettings
from exporter.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConnectFailed,
    ExportError,
    LinkExpired,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    RetryableError,
    ServerError,
    TransportError,
    Unreachable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Query parameters: a mapping, or pairs when a name repeats (expand=team&expand=skills).
Params = Mapping[str, str] | Sequence[tuple[str, str]]
BODY_EXCERPT_CHARS = 300
# Every body is read whole (a page is parsed whole), so aiohttp's stream needs no flow control
# while it fills; see _send_once.
WHOLE_BODY_BUFFER = 1 << 30


@dataclass(frozen=True, slots=True)
class Response:
    """A finished response: status, headers (lower-cased names) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def correlation_id(self) -> str:
        return self.headers.get("inin-correlation-id", "")


@dataclass(frozen=True, slots=True)
class Request:
    """One request down the send path: what to send, and how it takes its turn.

    ``bearer``: it carries the token (the auth layer adds it, and replays once after a 401);
    ``paced``: it waits for a turn in the API's rate limit and steers it by the answer's
    headers. A pre-signed download URL is neither: it is not the API's, and its budget is not
    the API's."""

    method: str
    url: str
    body: bytes | None = None
    params: Params | None = None
    priority: float = URGENT  # its place in the queue for the rate limit (``acquire``)
    bearer: bool = True
    paced: bool = True

    def described(self) -> str:
        """For logs and errors: the method and the URL without its query (a pre-signed URL's
        query carries its signature)."""
        return f"{self.method} {self.url.split('?', 1)[0]}"


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters for the run summary."""

    requests: int
    retries: int
    rate_limited: int
    token_refreshes: int
    pauses: int
    paused_seconds: float
    # The last answered request's time on the wire (no pool or pace wait): planning reads it
    # right after a request of its own, before any other is in flight.
    last_round_trip_s: float


class ApiClient:
    """Authenticated, paced, retried access to one Genesys Cloud API base URL, and retried
    downloads of pre-signed URLs beside it.

    ``limiter`` and ``clock`` (monotonic seconds; default the event loop's) are handed in by
    tests that move time or watch the turns; a run gets its own of each."""

    def __init__(
        self,
        connection: Connection,
        settings: HttpSettings,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._conn = connection
        self._settings = settings
        self._policy = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            max_seconds=settings.retry_max_seconds,
            backoff_base_s=settings.retry_backoff_base_s,
            backoff_max_s=settings.retry_backoff_max_s,
        )
        self._session: aiohttp.ClientSession | None = None
        self._pool = asyncio.Semaphore(settings.concurrency)
        self._clock = clock or asyncio.get_running_loop().time
        self.limiter = limiter or RateLimiter(settings.rate_limit_per_minute, clock=self._clock)
        self.tokens = TokenProvider(
            self._mint_token, refresh_margin_s=settings.token_refresh_margin_s, clock=self._clock
        )
        self._requests = 0
        self._retries = 0
        self._rate_limited = 0
        self._round_trip_s = 0.0

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(
            limit=self._settings.concurrency + 2,  # +2: token requests never wait for the pool
            ttl_dns_cache=300,
            ssl=True,  # certificate verification always on; there is no switch to turn it off
        )
        timeout = aiohttp.ClientTimeout(
            total=self._settings.request_timeout_s,
            connect=self._settings.connect_timeout_s,
            sock_read=self._settings.request_timeout_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"User-Agent": "genesys-exporter"},
            auto_decompress=True,
            raise_for_status=False,
            read_bufsize=WHOLE_BODY_BUFFER,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    def statistics(self) -> ClientStats:
        limiter = self.limiter.statistics()
        return ClientStats(
            requests=self._requests,
            retries=self._retries,
            rate_limited=self._rate_limited,
            token_refreshes=self.tokens.refreshes,
            pauses=limiter.pauses,
            paused_seconds=limiter.paused_seconds,
            last_round_trip_s=self._round_trip_s,
        )

    # -- the public send path ------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        expect: tuple[int, ...] = (200,),
        parse: Callable[[bytes], T],
        priority: float = URGENT,
    ) -> T:
        """Send to the API with retries; ``parse`` runs inside the retry loop so bad bodies
        are retried. ``priority`` orders requests queued for the rate limit, lowest first."""
        body = None if json is None else orjson.dumps(json)
        request = Request(method, self._conn.api_url + path, body, params, priority)
        return await self._send_with_retries(request, expect, parse)

    async def download(
        self, url: str, *, parse: Callable[[bytes], T], expect: tuple[int, ...] = (200,)
    ) -> T:
        """GET an absolute pre-signed URL (a bulk job's results): retried like any request,
        but without the bearer token (the URL is its own credential, and the token must not
        reach another host) and outside the API's rate limit. An answer of 403 or 410 means
        the link has expired: ``LinkExpired``, for the caller to ask for fresh links."""
        request = Request("GET", url, bearer=False, paced=False)
        return await self._send_with_retries(request, expect, parse)

    async def _send_with_retries(
        self, request: Request, expect: tuple[int, ...], parse: Callable[[bytes], T]
    ) -> T:
        delays = self._policy.delays()
        deadline = self._clock() + self._policy.max_seconds
        failures = 0
        while True:
            try:
                response = await self._send_authenticated(request)
                return _parse_expected(response, expect, parse, download=not request.bearer)
            except RetryableError as exc:
                error = exc
                self._refuse_long_wait(exc)
                wait, counts = self._plan_retry(exc, delays)
            failures += counts
            out_of_time = self._clock() + wait > deadline
            if not _retryable(error) or failures >= self._policy.max_attempts or out_of_time:
                raise _given_up(error)
            self._retries += 1
            log.debug("retrying %s in %.2f s: %s", request.described(), wait, error)
            await asyncio.sleep(wait)

    def _refuse_long_wait(self, exc: RetryableError) -> None:
        """A Retry-After beyond ``retry_after_max_s`` (a spent quota, a maintenance 503, a
        login service backing off) stops the run, progress kept, instead of sleeping."""
        bound = self._settings.retry_after_max_s
        if exc.retry_after is None or exc.retry_after <= bound:
            return
        said = f"HTTP {exc.status}" if exc.status else "an answer"
        raise QuotaExhausted(
            f"The service asked to wait {_human_seconds(exc.retry_after)} before the next "
            f"request (Retry-After on {said} from {exc.url}), longer than the "
            f"{_human_seconds(bound)} bound: a quota is spent or the service is down for "
            "maintenance. Progress is kept; run the same command again later to resume, or "
            "raise http.retry_after_max_s.",
            retry_after=exc.retry_after,
        )

    def _plan_retry(self, exc: RetryableError, delays: Iterator[float]) -> tuple[float, bool]:
        """(seconds to wait, whether this failure counts against the attempt bound)."""
        if isinstance(exc, RateLimited):
            # Server-paced: the shared pause (Retry-After, or our backoff when it gave none)
            # makes every request wait in the limiter, so this one just queues again. These
            # waits are bounded by retry_max_seconds rather than by attempts.
            if exc.retry_after is None:
                self.limiter.pause(next(delays), "HTTP 429 without Retry-After: backing off")
            return 0.0, exc.retry_after is None
        if exc.retry_after is not None:  # a 503 may say when to come back
            return exc.retry_after, True
        return next(delays), True

    # -- layer: auth ----------------------------------------------------------------------

    async def _send_authenticated(self, request: Request) -> Response:
        if not request.bearer:
            return await self._send_paced(request, None)
        token = await self.tokens.get()
        response = await self._send_paced(request, token)
        if response.status != 401:
            return response
        # Expired or revoked: drop this token (only this one), mint once, replay once.
        self.tokens.invalidate(token)
        token = await self.tokens.get()
        response = await self._send_paced(request, token)
        if response.status == 401:
            raise AuthError(
                "The API rejected a freshly issued token (HTTP 401 "
                f"{_error_code(response.body)}). The OAuth client may have been disabled or "
                "its IP allow-list excludes this machine; check the client in Genesys Cloud."
            )
        return response

    # -- layer: pool + limiter ------------------------------------------------------------

    async def _send_paced(self, request: Request, token: Token | None) -> Response:
        async with self._pool:
            if request.paced:
                await self.limiter.acquire(request.priority)
            response = await self._send_once(request, token)
        if not request.paced:
            if response.status == 429:  # the storage's own throttle: retried, our pace untouched
                raise RateLimited(
                    "The download was throttled (HTTP 429).",
                    retry_after=parse_retry_after(response.headers.get("retry-after")),
                    status=429,
                    url=_shown(response.url),
                )
            return response
        self.limiter.observe(response.headers)
        if response.status == 429:
            self._on_rate_limited(response)
        return response

    def _on_rate_limited(self, response: Response) -> None:
        self._rate_limited += 1
        # First: after the pause below, this 429 would look like the tail of an earlier one.
        self.limiter.rate_limited()
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        limited = RateLimited(
            "The API rate limit was hit (HTTP 429).",
            retry_after=retry_after,
            status=429,
            url=response.url,
            correlation_id=response.correlation_id,
        )
        self._refuse_long_wait(limited)
        if retry_after is not None:
            self.limiter.pause(retry_after, f"HTTP 429 from {response.url}, Retry-After")
        raise limited

    # -- layer: one request (the only place that sees aiohttp) ----------------------------

    async def _send_once(self, request: Request, token: Token | None) -> Response:
        assert self._session is not None, "ApiClient used outside 'async with'"
        url = request.url
        headers = {} if token is None else {"Authorization": f"Bearer {token.value}"}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        self._requests += 1
        began = self._clock()
        try:
            # aiohttp's total timeout stops at the headers when the body is awaited with
            # wait_eof, so the whole exchange gets its own deadline.
            async with (
                asyncio.timeout(self._settings.request_timeout_s),
                self._session.request(
                    request.method,
                    url,
                    data=request.body,
                    params=request.params,
                    headers=headers,
                ) as resp,
            ):
                # One wake-up when the body is complete, not one per chunk received: a 5 MB
                # page comes in 20 (loopback) to 300 (16 KB network reads) chunks. Measured:
                # 7% less CPU per export with 16 KB reads. Errors and read timeouts end it too.
                await resp.content.wait_eof()
                payload = await resp.read()
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                self._round_trip_s = self._clock() - began
                return Response(resp.status, hdrs, payload, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(request.method, url.split("?", 1)[0], exc) from exc

    async def _mint_token(self) -> tuple[str, float]:
        """POST /oauth/token with Basic client auth; retried like any request, never paced."""
        delays = self._policy.delays()
        deadline = self._clock() + self._policy.max_seconds
        for attempt in range(1, self._policy.max_attempts + 1):
            try:
                return await self._request_token()
            except RetryableError as exc:
                self._refuse_long_wait(exc)
                wait = exc.retry_after if exc.retry_after is not None else next(delays)
                last = attempt == self._policy.max_attempts or self._clock() + wait > deadline
                if last or not _retryable(exc):
                    raise Unreachable(
                        f"The login service at {self._conn.login_url} could not be used: "
                        f"{exc}. Check the login URL (or region), the network and any proxy, "
                        "then run again."
                    ) from exc
                log.debug("retrying the token request in %.2f s: %s", wait, exc)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _request_token(self) -> tuple[str, float]:
        assert self._session is not None
        url = self._conn.login_url + "/oauth/token"
        pair = f"{self._conn.client_id}:{self._conn.client_secret}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        try:
            async with self._session.post(
                url, data={"grant_type": "client_credentials"}, headers=headers
            ) as resp:
                status, payload = resp.status, await resp.read()
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error("POST", url, exc) from exc
        if status in (404, 405):
            raise ConfigError(
                f"The login URL {self._conn.login_url} answered HTTP {status} for /oauth/token: "
                "it is not a Genesys Cloud login service. Set the region (--region or "
                "GENESYSCLOUD_REGION) or a correct login URL (--login-url)."
            )
        if status == 429 or status >= 500:
            error = RateLimited if status == 429 else ServerError
            raise error(f"HTTP {status}", retry_after=retry_after, status=status, url=url)
        return self._read_token(status, payload)

    def _read_token(self, status: int, payload: bytes) -> tuple[str, float]:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            data = {}
        if status == 200 and isinstance(data, dict) and data.get("access_token"):
            return str(data["access_token"]), float(data.get("expires_in", 86400))
        if status == 200:
            raise TransportError("the token response had no access_token", url=self._conn.login_url)
        raise AuthError(
            explain_token_rejection(
                status=status,
                error=str(data.get("error", "")) if isinstance(data, dict) else "",
                description=str(data.get("error_description", ""))
                if isinstance(data, dict)
                else "",
                login_url=self._conn.login_url,
            )
        )


def _parse_expected(
    response: Response, expect: tuple[int, ...], parse: Callable[[bytes], T], *, download: bool
) -> T:
    if response.status in expect:
        try:
            return parse(response.body)
        except ValueError as exc:  # orjson and msgspec decode errors are ValueErrors
            raise TransportError(
                f"The response from {_shown(response.url)} was not valid JSON ({exc}); it "
                "was probably cut short.",
                url=_shown(response.url),
            ) from exc
    if download:  # a pre-signed URL's query is its signature: never in a message or a log
        response = dataclasses.replace(response, url=_shown(response.url))
    if download and response.status in (403, 410):
        raise LinkExpired(
            f"The download link answered HTTP {response.status}: it has expired (pre-signed "
            "links live minutes); ask its job for fresh links.",
            status=response.status,
            url=_shown(response.url),
        )
    raise _status_error(response)


def _shown(url: str) -> str:
    """A URL fit for a message or a log: no query (a pre-signed URL's is its signature)."""
    return url.split("?", 1)[0]


def _status_error(response: Response) -> ApiError | PermissionDenied:
    status, code = response.status, _error_code(response.body)
    fields: dict[str, Any] = {
        "status": status,
        "url": response.url,
        "code": code,
        "correlation_id": response.correlation_id,
        "body_excerpt": response.body[:BODY_EXCERPT_CHARS].decode("utf-8", "replace"),
        "server_message": _error_message(response.body),
        "message_params": _message_params(response.body),
    }
    if status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return ServerError(f"HTTP {status} from {response.url}", retry_after=retry_after, **fields)
    if status == 403:
        # The URL and the server's words only: the caller knows which dataset and permission.
        return PermissionDenied(
            f"HTTP 403 {code} from {response.url}: {_error_message(response.body) or 'forbidden'}"
        )
    message = _error_message(response.body) or f"HTTP {status}"
    return ApiError(
        f"{response.url} answered HTTP {status} {code}: {message} "
        f"(correlation id {response.correlation_id or 'none'})",
        **fields,
    )


def _error_fields(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_code(body: bytes) -> str:
    return str(_error_fields(body).get("code", ""))


def _error_message(body: bytes) -> str:
    return str(_error_fields(body).get("message", ""))[:BODY_EXCERPT_CHARS]


def _message_params(body: bytes) -> dict[str, str]:
    params = _error_fields(body).get("messageParams")
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}


def _transport_error(method: str, url: str, exc: BaseException) -> TransportError:
    """Our error for an aiohttp or timeout failure, telling "no connection" from the rest."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ConnectFailed(
            f"{method} {url} failed: the server's TLS certificate is not trusted "
            f"({exc.certificate_error}). If a proxy intercepts TLS, add its CA to the system "
            "trust store (or point SSL_CERT_FILE at it); retrying cannot help.",
            retryable=False,
            url=url,
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return ConnectFailed(
            f"{method} {url} failed: the TLS handshake failed ({exc}); check that the URL's "
            "scheme matches the server (https for Genesys Cloud).",
            retryable=False,
            url=url,
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ConnectFailed(f"{method} {url} failed: the host name did not resolve.", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return ConnectFailed(f"{method} {url} failed: could not connect ({reason}).", url=url)
    if isinstance(exc, TimeoutError):
        return TransportError(
            f"{method} {url} failed: no complete response within the request timeout", url=url
        )
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return TransportError(f"{method} {url} failed: {what}", url=url)


def _retryable(error: RetryableError) -> bool:
    return not isinstance(error, ConnectFailed) or error.retryable


def _given_up(error: RetryableError) -> ExportError:
    """What a request raises once it stops retrying: no connection at all stops the run."""
    if isinstance(error, ConnectFailed):
        return Unreachable(
            f"{error} The service cannot be reached; check the API URL (or region), the "
            "network and any proxy, then run again: progress is kept."
        )
    return error


def _human_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
