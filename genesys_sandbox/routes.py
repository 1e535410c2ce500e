"""The emulated endpoints, one handler each; cross-cutting work (auth, limits, faults) is done
by the middleware in ``app.py`` before a handler runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web

from genesys_sandbox.auth import client_credentials, login
from genesys_sandbox.call import CALL
from genesys_sandbox.conversation_aggregates import ConversationAggregates
from genesys_sandbox.conversation_jobs import ConversationDetails
from genesys_sandbox.jobs import with_repeats
from genesys_sandbox.listing_routes import ListingRoutes
from genesys_sandbox.quality_routes import QualityRoutes
from genesys_sandbox.queries import parse_body
from genesys_sandbox.state import SandboxState
from genesys_sandbox.user_details import UserDetails
from genesys_sandbox.wfm_adherence import AdherenceJobs
from genesys_sandbox.wfm_schedules import ScheduleSearch
from genesys_sandbox.wire import ApiProblem, json_response, login_error
from genesys_sandbox.workforce_routes import WorkforceRoutes


class Family(Protocol):
    """One analytics details family: what its jobs select and how its pages read."""

    name: str  # its jobs are unknown to another family's routes
    path: str  # .../details; jobs below it, and query
    route_prefix: str  # of its route names
    records_key: str  # what a results page lists its records under

    def rows(self, state: SandboxState, body: dict[str, Any]) -> Sequence[Any]: ...
    def availability_text(self, state: SandboxState) -> str: ...
    def records(self, state: SandboxState, rows: list[Any]) -> bytes: ...
    def query(self, state: SandboxState, body: dict[str, Any]) -> bytes: ...


FAMILIES: tuple[Family, ...] = (ConversationDetails(), UserDetails(), ConversationAggregates())


class Routes:
    """Handlers over one ``SandboxState``; ``table()`` lists them with their route names."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Any]]:
        """(method, path, route name, handler)."""
        return [
            ("POST", "/oauth/token", "oauth.token", self.token),
            *(row for family in FAMILIES for row in JobRoutes(self.state, family).table()),
            *ListingRoutes(self.state).table(),
            *QualityRoutes(self.state).table(),
            *WorkforceRoutes(self.state).table(),
            *ScheduleSearch(self.state).table(),
            *AdherenceJobs(self.state).table(),
            ("GET", "/api/v2/tokens/me", "tokens.me", self.token_info),
            ("GET", "/api/v2/organizations/me", "organizations.me", self.organization),
            ("DELETE", "/api/v2/tokens/me", "tokens.me", self.revoke_token),
        ]

    async def token(self, request: web.Request) -> web.Response:
        """POST /oauth/token: the client-credentials grant (Basic or form-body client auth)."""
        s = self.state.settings
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        credentials = client_credentials(request.headers.get("Authorization"), form)
        refusal = login(form, credentials, (s.client_id, s.client_secret), s.token_error_status)
        if refusal is not None:
            return login_error(refusal.status, refusal.error, refusal.description)
        grant = self.state.tokens.issue(self.state.clock.now(), s.token_ttl_s)
        self.state.stats.tokens_issued += 1
        body = {"access_token": grant.access_token, "token_type": "bearer",
                "expires_in": grant.expires_in}  # fmt: skip
        return json_response(orjson.dumps(body))

    async def token_info(self, request: web.Request) -> web.Response:
        """GET /api/v2/tokens/me: a cheap TokenInfo, handy as a credentials probe."""
        org = self._org_ref()
        client = {"id": self.state.settings.client_id, "name": "Sandbox client",
                  "organization": org}  # fmt: skip
        body = {"organization": org, "homeOrganization": org, "authorizedScope": [],
                "OAuthClient": client}  # fmt: skip
        return json_response(orjson.dumps(body))

    async def organization(self, request: web.Request) -> web.Response:
        """GET /api/v2/organizations/me: the caller's Organization (no permission declared)."""
        s = self.state.settings
        domain = "".join(c if c.isalnum() else "-" for c in s.org_name.lower()).strip("-")
        body = {
            "id": s.org_id, "name": s.org_name, "defaultLanguage": "en-us",
            "defaultCountryCode": "US", "thirdPartyOrgName": domain, "domain": domain,
            "version": 1, "state": "active",
            "selfUri": f"/api/v2/organizations/{s.org_id}",
        }  # fmt: skip
        return json_response(orjson.dumps(body))

    def _org_ref(self) -> dict[str, str]:
        """The org as a NamedEntity (what TokenInfo holds)."""
        return {"id": self.state.settings.org_id, "name": self.state.settings.org_name}

    async def revoke_token(self, request: web.Request) -> web.Response:
        """DELETE /api/v2/tokens/me: the caller's own token stops working (200, no body)."""
        self.state.tokens.revoke(CALL.get().token)
        return web.Response(status=200)


class JobRoutes:
    """The jobs lifecycle and the sync query of one family."""

    def __init__(self, state: SandboxState, family: Family) -> None:
        self.state = state
        self.family = family

    def table(self) -> list[tuple[str, str, str, Any]]:
        """Its routes; availability before {job_id}, so it wins."""
        jobs, r = f"{self.family.path}/jobs", self.family.route_prefix
        own = getattr(self.family, "own_availability", True)  # aggregates: the details' one
        return [
            ("POST", jobs, f"{r}jobs.submit", self.submit_job),
            *(
                [("GET", f"{jobs}/availability", f"{r}jobs.availability", self.availability)]
                if own
                else []
            ),
            ("GET", f"{jobs}/{{job_id}}", f"{r}jobs.status", self.job_status),
            ("GET", f"{jobs}/{{job_id}}/results", f"{r}jobs.results", self.job_results),
            ("DELETE", f"{jobs}/{{job_id}}", f"{r}jobs.delete", self.delete_job),
            ("POST", f"{self.family.path}/query", f"{r}query", self.query),
        ]

    async def submit_job(self, request: web.Request) -> web.Response:
        """POST .../details/jobs: 202 {jobId}; the job fixes its result set now."""
        body = parse_body(await request.read())
        rows = self.family.rows(self.state, body)
        s, call = self.state.settings, CALL.get()
        stuck = call.faulted("job-stuck")
        job = self.state.jobs.submit(
            s.client_id, self.family.name, rows, delay_s=s.job_delay_s,
            expiry_s=s.job_expiry_s, max_active=s.max_concurrent_jobs,
            failed=call.faulted("job-failed") is not None,
            queued_s=stuck.hang_s if stuck else 0.0,
        )  # fmt: skip
        page_size = getattr(self.family, "page_size", None)  # set in the body (aggregates)
        job.page_size = page_size(self.state, body) if page_size else None
        self.state.stats.jobs_created += 1
        self.state.stats.job_records += len(rows)
        return json_response(orjson.dumps({"jobId": job.id}), 202)

    async def availability(self, request: web.Request) -> web.Response:
        body = {"dataAvailabilityDate": self.family.availability_text(self.state)}
        return json_response(orjson.dumps(body))

    async def job_status(self, request: web.Request) -> web.Response:
        job = self.state.jobs.get(request.match_info["job_id"], self.family.name)
        return json_response(orjson.dumps(self.state.jobs.status(job)))

    async def job_results(self, request: web.Request) -> web.Response:
        """GET .../jobs/{id}/results?pageSize&cursor: one page, cursor absent on the last."""
        s = self.state.settings
        job = self.state.jobs.get(request.match_info["job_id"], self.family.name)
        size = job.page_size or _page_size(request, s.job_default_page_size, s.job_max_page_size)
        if CALL.get().faulted("job-expired"):
            self.state.jobs.expire_now(job)
        window = self.state.jobs.window(
            job, request.query.get("cursor") or None, size, expiry_pages=s.job_expiry_pages
        )
        chosen = list(job.rows[window.offset : window.end])
        if CALL.get().faulted("repeat-records"):
            chosen = with_repeats(chosen, job.rows[window.offset - 1] if window.offset else None)
        records = self.family.records(self.state, chosen)
        tail = b'"cursor":"' + window.cursor.encode() + b'",' if window.cursor else b""
        availability = self.family.availability_text(self.state).encode()
        return json_response(b'{"' + self.family.records_key.encode() + b'":[' + records
                             + b"]," + tail + b'"dataAvailabilityDate":"' + availability
                             + b'"}')  # fmt: skip

    async def delete_job(self, request: web.Request) -> web.Response:
        job = self.state.jobs.get(request.match_info["job_id"], self.family.name)
        if self.state.jobs.cancel(job):
            self.state.stats.jobs_deleted += 1
        return web.Response(status=204)

    async def query(self, request: web.Request) -> web.Response:
        """POST .../details/query."""
        body = parse_body(await request.read())
        return json_response(self.family.query(self.state, body))


def _page_size(request: web.Request, default: int, maximum: int) -> int:
    text = request.query.get("pageSize")
    if text is None:
        return default
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise ApiProblem.of(400, "invalid.query.param.value", text, "pageSize", f"1-{maximum}")
    return size
