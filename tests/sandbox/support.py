"""Helpers for the sandbox's own tests: small settings and a thin loopback client."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from genesys_sandbox import DatasetSpec, Sandbox, SandboxSettings

START = datetime(2026, 11, 1, tzinfo=UTC)
SPEC = DatasetSpec(conversations=1500, start=START, days=3, seed=11)
JOBS = "/api/v2/analytics/conversations/details/jobs"
QUERY = "/api/v2/analytics/conversations/details/query"
DAY1 = "2026-11-01T00:00:00.000Z/2026-11-02T00:00:00.000Z"
ANY_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def settings(**changes: Any) -> SandboxSettings:
    """Small data, no rate limit, instant jobs; override any field."""
    base = SandboxSettings(dataset=SPEC, rate_per_minute=None, job_delay_s=0.0)
    return dataclasses.replace(base, **changes)


@contextlib.asynccontextmanager
async def running(
    clock: Callable[[], float] | None = None, **changes: Any
) -> AsyncIterator[Client]:
    """A sandbox with ``settings(**changes)`` and a client session against it."""
    async with Sandbox(settings(**changes), clock=clock) as sb, aiohttp.ClientSession() as s:
        yield Client(sb, s)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """Raw HTTP against one sandbox: log in once, then call API paths with the bearer token."""

    def __init__(self, sb: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sb, self.session = sb, session
        self.token: str | None = None

    async def token_request(self, data: dict[str, str], authorization: str | None) -> Reply:
        headers = {"Authorization": authorization} if authorization else {}
        async with self.session.post(self.sb.url + "/oauth/token", data=data, headers=headers) as r:
            return Reply(r.status, r.headers, await r.read())

    async def login(self) -> str:
        reply = await self.token_request(
            {"grant_type": "client_credentials"}, basic(self.sb.client_id, self.sb.client_secret)
        )
        assert reply.status == 200, reply.body
        self.token = reply.json()["access_token"]
        return self.token

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        authorization: str | None = "token",
    ) -> Reply:
        if authorization == "token":
            authorization = "Bearer " + (self.token or await self.login())
        headers = {"Authorization": authorization} if authorization else {}
        data = None if json is None else orjson.dumps(json)
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = self.sb.url + path
        async with self.session.request(
            method, url, data=data, params=params, headers=headers
        ) as r:
            return Reply(r.status, r.headers, await r.read())

    async def submit(self, body: dict[str, Any]) -> str:
        reply = await self.call("POST", JOBS, json=body)
        assert reply.status == 202, reply.body
        return str(reply.json()["jobId"])

    async def all_results(self, job_id: str, page_size: int | None = None) -> list[dict[str, Any]]:
        """Every record of a job, following cursors to the end."""
        records: list[dict[str, Any]] = []
        params: dict[str, str] = {} if page_size is None else {"pageSize": str(page_size)}
        while True:
            reply = await self.call("GET", f"{JOBS}/{job_id}/results", params=params)
            assert reply.status == 200, reply.body
            page = reply.json()
            records += page["conversations"]
            if "cursor" not in page:
                return records
            params["cursor"] = page["cursor"]


def error_of(reply: Reply) -> dict[str, Any]:
    """The ErrorBody of ``reply``, checked for the envelope and the correlation id."""
    body = reply.json()
    assert body["status"] == reply.status
    assert body["contextId"] == reply.headers["ININ-Correlation-Id"]
    assert body["details"] == [] and body["errors"] == []
    return dict(body)


def normalised(value: Any) -> Any:
    """``value`` with timestamps as datetimes, so different ISO spellings compare equal."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, str) and ANY_TIMESTAMP.fullmatch(value):
        return datetime.fromisoformat(value)
    return value
