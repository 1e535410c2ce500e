"""The aiohttp application: routes plus one middleware that does, in order, what the real
platform does around every API call: latency, bearer auth, the per-token rate limit, the route's
permissions, injected faults, then the ErrorBody/correlation-id/rate-limit headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from genesys_sandbox import faults, permissions
from genesys_sandbox.call import CALL, Call
from genesys_sandbox.control import add_control_routes
from genesys_sandbox.routes import Routes
from genesys_sandbox.settings import FaultRule
from genesys_sandbox.state import SandboxState
from genesys_sandbox.stats import NO_RESPONSE
from genesys_sandbox.wire import (
    CORRELATION_HEADER,
    ApiProblem,
    error_response,
    new_correlation_id,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}
# Routes that take no bearer token and no turn of the rate limit: the token request, and
# pre-signed download links (their own credential, on another host in the real service).
UNADMITTED = frozenset({"oauth.token", "download"})


class SandboxApp:
    """Builds the web application over ``state`` and runs its middleware."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._route_names: dict[AbstractRoute, str] = {}

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for method, path, name, handler in Routes(self.state).table():
            self._route_names[app.router.add_route(method, path, handler)] = name
        add_control_routes(app, self.state)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = self._route_names.get(request.match_info.route)
        if route is None:
            return await self._unrouted(request, handler)
        stats = self.state.stats
        call = Call()
        reset = CALL.set(call)
        stats.enter()
        status = NO_RESPONSE
        try:
            response = await self._serve(request, handler, route)
            if not call.dropped:
                status = response.status
            return response
        finally:
            stats.leave()
            stats.record(route, status)
            CALL.reset(reset)

    async def _unrouted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Control endpoints pass through; unknown API paths get an ErrorBody 404."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            if not request.path.startswith("/api/"):
                raise
            correlation_id = new_correlation_id()
            response = error_response(ApiProblem.of(404, "not.found"), correlation_id)
            response.headers[CORRELATION_HEADER] = correlation_id
            return response

    async def _serve(
        self, request: web.Request, handler: Handler, route: str
    ) -> web.StreamResponse:
        headers = {CORRELATION_HEADER: new_correlation_id(), **NO_CACHE}
        delay = self.state.latency_s()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if route not in UNADMITTED:
                headers.update(self._admit(request, route))
            return await self._answer(request, handler, route, headers)
        except ApiProblem as problem:
            return self._error(problem, headers)

    def _error(self, problem: ApiProblem, headers: dict[str, str]) -> web.Response:
        response = error_response(problem, headers[CORRELATION_HEADER])
        response.headers.update(headers)
        return response

    def _admit(self, request: web.Request, route: str) -> dict[str, str]:
        """Auth, then the rate limit, then the permissions; returns the rate-limit headers."""
        state, now = self.state, self.state.clock.now()
        authorization = request.headers.get("Authorization")
        limiter = state.limiter
        try:
            token = state.tokens.check(authorization, now)
        except ApiProblem as problem:
            if limiter is not None:
                problem.headers.update(limiter.peek(authorization or "", now).headers())
            raise
        CALL.get().token = token
        rate_headers: dict[str, str] = {}
        if limiter is not None:
            decision = limiter.acquire(token, now)
            rate_headers = decision.headers()
            if not decision.allowed:
                seconds = str(decision.retry_after_s)
                raise ApiProblem.of(
                    429, "too.many.requests.retry.after", seconds, headers=rate_headers
                )
        try:
            permissions.check(route, state.settings.denied_permissions)
        except ApiProblem as denied:
            denied.headers.update(rate_headers)
            raise
        return rate_headers

    async def _answer(
        self, request: web.Request, handler: Handler, route: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        """The handler's answer, unless a fault replaces, precedes or mangles it."""
        # A results cursor, or a listing's after cursor (teams).
        cursor = request.query.get("cursor") or request.query.get("after")
        rule = self.state.faults.decide(route, has_cursor=cursor is not None)
        if rule is not None:
            self.state.stats.faults_injected[rule.kind] += 1
            if rule.kind in faults.BEFORE_HANDLER:
                return await self._fault_answer(request, rule, route)
            CALL.get().fault = rule
        try:
            response = await handler(request)
        except ApiProblem as problem:
            response = self._error(problem, headers)
        response.headers.update(headers)
        if rule is not None and rule.kind in faults.AFTER_HANDLER:
            return await self._mangle(request, response, rule)
        return response

    async def _fault_answer(
        self, request: web.Request, rule: FaultRule, route: str
    ) -> web.StreamResponse:
        if rule.kind == "drop":
            CALL.get().dropped = True
            return faults.drop_connection(request)
        if rule.kind == "hang":
            CALL.get().dropped = True
            return await faults.hang(request, rule.hang_s, self.state.closing)
        if rule.kind == "forbidden" or (rule.kind == "status" and rule.status == 403):
            raise permissions.forbidden(permissions.required(route))
        if rule.kind == "cursor-rejected":
            listing = "after" in request.query  # teams' cursor, not a job's
            message = "The after cursor is not valid." if listing else (
                "The cursor is not valid for this job."
            )  # fmt: skip
            raise ApiProblem(400, "bad.request", message)
        headers = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = faults.retry_after_header(
                rule.retry_after, self.state.clock.wall()
            )
        seconds = (rule.retry_after or "1").removeprefix("http-date:")
        problem = ApiProblem.for_status(rule.status, seconds)
        problem.headers.update(headers)
        raise problem

    async def _mangle(
        self, request: web.Request, response: web.StreamResponse, rule: FaultRule
    ) -> web.StreamResponse:
        if not isinstance(response, web.Response):
            return response
        kind = rule.kind
        if kind == "drop-mid-body":
            return await faults.send_mid_body(request, response)
        if kind == "trickle-body":
            return await faults.trickle_body(request, response, rule.hang_s, self.state.closing)
        if kind == "truncate":
            return faults.truncated(response)
        return faults.invalid_json(response)
