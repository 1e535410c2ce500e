"""Fault injection: which request gets which declared failure, and how each one goes on the wire.

Choices come from one RNG seeded with ``fault_seed``, so a run with the same requests in the same
order injects the same faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from aiohttp import web

from genesys_sandbox.settings import FaultRule

# Faults the middleware answers itself, without running the route's handler.
BEFORE_HANDLER = frozenset({"status", "drop", "hang", "forbidden", "cursor-rejected"})
# Faults that mangle the handler's real answer (so a submitted job still exists, say).
AFTER_HANDLER = frozenset({"drop-mid-body", "trickle-body", "truncate", "invalid-json"})
# Faults the handlers act on themselves (they change the job or the listing, not the wire).
IN_HANDLER = frozenset({"job-failed", "job-expired", "job-stuck", "repeat-records",
                        "empty-listing", "next-uri-loop", "entity-deleted"})  # fmt: skip
# What a broken proxy might send instead of JSON.
INVALID_JSON_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(slots=True)
class _RuleState:
    rule: FaultRule
    seen: int = 0  # matching requests so far
    fired: int = 0


class FaultInjector:
    """Decides, per request, which rule (if any) fires; the first rule that fires wins."""

    def __init__(self, rules: Iterable[FaultRule], seed: int) -> None:
        self._rng = random.Random(seed)
        self._states = [_RuleState(rule) for rule in rules]

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(state.rule for state in self._states)

    def add(self, rule: FaultRule) -> None:
        self._states.append(_RuleState(rule))

    def clear(self) -> None:
        self._states.clear()

    def decide(self, route: str, *, has_cursor: bool = False) -> FaultRule | None:
        """The rule to apply to this request, updating skip/count bookkeeping."""
        for state in self._states:
            rule = state.rule
            if not rule.matches_route(route) or (rule.kind == "cursor-rejected" and not has_cursor):
                continue
            state.seen += 1
            if state.seen <= rule.skip or (rule.count is not None and state.fired >= rule.count):
                continue
            # Draw only for real probabilities so that p=1 rules leave the stream untouched.
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            state.fired += 1
            return rule
        return None


def retry_after_header(spec: str, now: datetime) -> str:
    """The Retry-After value for a rule's spec: seconds as given, or an HTTP-date ahead of now."""
    if not spec.startswith("http-date:"):
        return spec
    seconds = float(spec.removeprefix("http-date:"))
    # HTTP-dates have whole seconds: round up so the client never waits less than asked.
    moment = now + timedelta(seconds=seconds)
    moment = moment.replace(microsecond=0) + timedelta(seconds=math.ceil(moment.microsecond / 1e6))
    return format_datetime(moment, usegmt=True)


def drop_connection(request: web.Request) -> web.Response:
    """Close the socket before any byte of the answer; the returned response is never sent."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


async def hang(request: web.Request, seconds: float, closing: asyncio.Event) -> web.Response:
    """Send nothing for ``seconds`` (or until the sandbox closes), then drop the connection."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing.wait(), seconds)
    return drop_connection(request)


async def send_mid_body(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Send the status line, headers and half the body of ``response``, then close."""
    body = _body_of(response)
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return stream


TRICKLE_INTERVAL_S = 0.05


async def trickle_body(
    request: web.Request, response: web.Response, seconds: float, closing: asyncio.Event
) -> web.StreamResponse:
    """Send half the body, then one byte every 50 ms for ``seconds``, then close: a stalled
    proxy that a read timeout never notices, only a deadline on the whole response."""
    body = _body_of(response)
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    half = len(body) // 2
    await stream.write(body[:half])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for i in range(half, len(body) - 1):  # never the last byte: the body stays incomplete
        if closing.is_set() or loop.time() >= deadline:
            break
        await stream.write(body[i : i + 1])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), TRICKLE_INTERVAL_S)
    if request.transport is not None:
        request.transport.close()
    return stream


def truncated(response: web.Response) -> web.Response:
    """The first half of the body with an honest Content-Length: valid HTTP, broken JSON."""
    body = _body_of(response)
    return _with_body(response, body[: max(1, len(body) // 2)])


def invalid_json(response: web.Response) -> web.Response:
    """Same status and headers, but a body that is not JSON at all."""
    return _with_body(response, INVALID_JSON_BODY)


def _body_of(response: web.Response) -> bytes:
    body = response.body
    return bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else b""


def _with_body(response: web.Response, body: bytes) -> web.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return web.Response(body=body, status=response.status, headers=headers)
