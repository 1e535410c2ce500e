"""The download path for pre-signed URLs: no bearer token, no turn in the API's rate limit,
retried like any request, and an expired link said as such."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from exporter.client.http import ApiClient
from exporter.client.ratelimit import URGENT, RateLimiter
from exporter.errors import LinkExpired
from tests.support import exporter_settings

SIGNATURE = "X-Amz-Signature=d3adb33f"


class CountingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__(60)
        self.turns = 0

    async def acquire(self, priority: float = URGENT) -> None:
        self.turns += 1
        await super().acquire(priority)


@pytest.fixture
async def bucket() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A stand-in for an object store's pre-signed URLs: /results answers once 503, then the
    file; /expired answers 403 as S3 does for a link past its expiry. Yields its URL and the
    Authorization header each request carried."""
    seen: list[str | None] = []
    answers = iter([web.Response(status=503), None])

    async def results(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        answer = next(answers, None)
        return answer or web.json_response({"records": [1, 2, 3]})

    async def expired(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")

    app = web.Application()
    app.router.add_get("/results", results)
    app.router.add_get("/expired", expired)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", seen
    await runner.cleanup()


async def test_a_download_carries_no_token_and_takes_no_turn(sandbox, bucket, tmp_path: Path):
    """The file comes back (after a retried 503) without the API's token ever reaching the
    other host, and without a turn in the API's rate limit."""
    url, seen = bucket
    settings = exporter_settings(sandbox, tmp_path)
    limiter = CountingLimiter()
    async with ApiClient(settings.connection, settings.http, limiter=limiter) as api:
        await api.tokens.get()  # a token exists: it still must not be sent
        body = await api.download(f"{url}/results?{SIGNATURE}", parse=orjson.loads)
        assert body == {"records": [1, 2, 3]}
        assert api.statistics().retries == 1
    assert seen == [None, None] and limiter.turns == 0


async def test_an_expired_link_is_said_without_its_signature(sandbox, bucket, tmp_path: Path):
    """A 403 from a pre-signed URL is LinkExpired (ask the job for fresh links), at once,
    and the message shows the URL without its query."""
    url, seen = bucket
    settings = exporter_settings(sandbox, tmp_path)
    async with ApiClient(settings.connection, settings.http) as api:
        with pytest.raises(LinkExpired) as raised:
            await api.download(f"{url}/expired?{SIGNATURE}", parse=orjson.loads)
    assert "expired" in str(raised.value) and SIGNATURE not in str(raised.value)
    assert raised.value.url == f"{url}/expired" and seen == [None]
